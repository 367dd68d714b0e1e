"""Seeded generator of a *source* set for offline pretraining: not the target data.

The demo's pretraining strategies need a second data set, as ImageNet is to the studies' medical
targets: related images with other content and other labels.  Each source image shows one large
stained "particle" with an inner mark among smaller round distractors on an unevenly lit, noisy
background.  The label is the shape of the mark, one of :data:`SOURCE_CLASSES`; colours are drawn
from the whole hue circle (the target smear uses a fixed purple/red palette), sizes and positions
vary.  No white-cell nucleus shape of the target (round nucleus, 4-5 lobes, horseshoe, two lobes)
is a source class.

Images are made in memory (``uint8`` array ``(N, size, size, 3)`` plus labels); nothing is written.
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import asdict, dataclass

import numpy as np

SOURCE_CLASSES = ("square", "triangle", "cross", "bar", "ring", "star")
SUPERSAMPLE = 2


@dataclass(frozen=True)
class SourceConfig:
    n: int = 2048
    size: int = 64
    seed: int = 1000  # a seed stream apart from the target generator's
    noise_sigma: float = 6.0
    n_distractors: tuple[int, int] = (3, 9)
    radius: tuple[float, float] = (12.0, 16.0)
    version: int = 2  # bump when the drawing rules change

    def key(self) -> dict:
        return asdict(self)


def _colour(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val))
    return np.array([r, g, b], np.float32) * 255


def _mark(label: str, yy, xx, cy, cx, r, theta) -> np.ndarray:
    """Boolean mask of the inner mark, rotated by ``theta``."""
    dy, dx = yy - cy, xx - cx
    u = dx * math.cos(theta) + dy * math.sin(theta)
    v = -dx * math.sin(theta) + dy * math.cos(theta)
    if label == "square":
        return (np.abs(u) <= 0.5 * r) & (np.abs(v) <= 0.5 * r)
    if label == "triangle":  # equilateral, inscribed in a circle of radius 0.7 r
        s = 0.7 * r
        return (v <= s / 2) & (v >= -s + math.sqrt(3) * np.abs(u) * 1.0) & (np.abs(u) <= s * math.sqrt(3) / 2)
    if label == "cross":
        arm, w = 0.7 * r, 0.18 * r
        return ((np.abs(u) <= arm) & (np.abs(v) <= w)) | ((np.abs(v) <= arm) & (np.abs(u) <= w))
    if label == "bar":
        return (np.abs(u) <= 0.75 * r) & (np.abs(v) <= 0.22 * r)
    if label == "ring":  # closed
        rad = np.sqrt(dy ** 2 + dx ** 2)
        return (rad >= 0.4 * r) & (rad <= 0.7 * r)
    if label == "star":  # five points
        rad = np.sqrt(dy ** 2 + dx ** 2)
        ang = np.arctan2(v, u)
        edge = 0.35 * r + 0.4 * r * np.clip(np.cos(5 * ang), 0, 1) ** 2
        return rad <= edge
    raise ValueError(f"unknown source class {label!r}; expected one of {SOURCE_CLASSES}")


def render_source(label: str, cfg: SourceConfig, rng: np.random.Generator) -> np.ndarray:
    """One RGB ``uint8`` image (size x size x 3)."""
    s, ss = cfg.size, cfg.size * SUPERSAMPLE
    yy, xx = (np.mgrid[0:ss, 0:ss].astype(np.float32) + 0.5) / SUPERSAMPLE
    base = _colour(rng, (0.0, 0.25), (0.75, 0.98))
    gy, gx = rng.normal(0, 0.3, 2)
    img = base[None, None, :] * (1.0 + (gy * (yy - s / 2) + gx * (xx - s / 2)) / s)[..., None]
    scale = s / 64  # radii are given for 64 px images
    r = rng.uniform(*cfg.radius) * scale  # the mark (darkest thing in the image) spans about 1.2 r
    cy, cx = rng.uniform(r + 1, s - r - 1, 2)
    for _ in range(int(rng.integers(cfg.n_distractors[0], cfg.n_distractors[1] + 1))):
        rr = rng.uniform(3.0, 7.0) * scale
        ry, rx = rng.uniform(0, s, 2)
        if math.hypot(ry - cy, rx - cx) < r + rr * 0.5:
            continue
        disc = (yy - ry) ** 2 + (xx - rx) ** 2 <= rr * rr
        img = np.where(disc[..., None], _colour(rng, (0.2, 0.6), (0.7, 0.95)), img)
    body = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    img = np.where(body[..., None], _colour(rng, (0.15, 0.5), (0.7, 0.95)), img)
    mark = _mark(label, yy, xx, cy, cx, r, rng.uniform(0, 2 * math.pi)) & body
    img = np.where(mark[..., None], _colour(rng, (0.5, 0.9), (0.2, 0.45)), img)
    img = img.reshape(s, SUPERSAMPLE, s, SUPERSAMPLE, 3).mean(axis=(1, 3))
    img = img + rng.normal(0, cfg.noise_sigma, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def generate_source(cfg: SourceConfig = SourceConfig()) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, S, S, 3), labels int64 (N,))``, balanced over :data:`SOURCE_CLASSES`."""
    images = np.empty((cfg.n, cfg.size, cfg.size, 3), np.uint8)
    labels = np.arange(cfg.n, dtype=np.int64) % len(SOURCE_CLASSES)
    for i in range(cfg.n):
        images[i] = render_source(SOURCE_CLASSES[labels[i]], cfg, np.random.default_rng([cfg.seed, i]))
    return images, labels
