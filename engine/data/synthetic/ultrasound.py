"""Seeded generator of a breast-ultrasound-like demo dataset, written as real files.

Each grayscale image shows a B-mode-like scan: skin line, subcutaneous fat, fibroglandular tissue
and chest-wall muscle as wavy horizontal layers, depth attenuation, and multiplicative speckle
(gamma-distributed intensity, laterally correlated).  Three classes:

* ``benign``    -- a smooth, well-circumscribed hypoechoic ellipse, wider than tall;
* ``malignant`` -- an irregular, spiculated, very dark mass with posterior acoustic shadowing;
* ``normal``    -- no lesion.

Lesion position and size, tissue and speckle come from the image's main random stream; the lesion's
shape and echo come from a stream of their own (as in :mod:`engine.data.synthetic.smear`), so the same
image index gives the same background whatever the class.  Pixels differ between classes only on
the lesion (its mask plus the anti-aliased rim) and, for ``malignant``, in the acoustic shadow
straight below it -- a lesion property, not a background one.  Lesions stay below
``TOP_KEEPOUT`` (a fraction of the height) so an overlay in the top rows never touches them
(see :mod:`engine.data.synthetic.confounded`).

Files written under ``out_dir``::

    images/<id>.png        grayscale (mode L), size x size
    masks/<id>.png         uint8, 0 background / 255 lesion (all 0 for ``normal``)
    annotations/<id>.xml   Pascal VOC, one ``lesion`` object (none for ``normal``)
    labels.csv             image,label,split
    manifest.json          generator parameters (the cache key for re-use)
"""
from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..dataset import DatasetSpec
from .smear import SUPERSAMPLE, voc_xml

log = logging.getLogger(__name__)

CLASSES = ("benign", "malignant", "normal")
LESION = 255
TOP_KEEPOUT = 0.2  # lesions (spicules included) stay below this fraction of the height
MAX_EXTENT = 1.65  # a lesion never reaches further than this many mean radii from its centre


@dataclass(frozen=True)
class UltrasoundConfig:
    n_train: int = 1200
    n_val: int = 150
    n_test: int = 150
    size: int = 64
    seed: int = 0
    looks: float = 3.0  # gamma shape of the speckle intensity (lower = harsher speckle)
    lesion_radius: tuple[float, float] = (6.0, 8.5)  # mean radius in pixels at size 64 (scaled with size)
    benign_echo: tuple[float, float] = (0.28, 0.4)  # lesion echo as a share of the tissue's
    malignant_echo: tuple[float, float] = (0.1, 0.2)
    shadow_strength: tuple[float, float] = (0.35, 0.6)  # malignant: share of echo removed below the lesion
    version: int = 2  # bump when the drawing rules change

    def key(self) -> dict:
        return asdict(self)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Zero-mean, unit-ish smooth random field: a coarse normal grid upsampled bicubically."""
    coarse = rng.normal(0, 1, cells).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((shape[1], shape[0]), Image.BICUBIC))


def tissue_echo(rng: np.random.Generator, s: int) -> np.ndarray:
    """Mean echogenicity (0..255 scale, before speckle) of layered breast tissue, (s, s)."""
    y = np.arange(s, dtype=np.float32)[:, None] + 0.5
    x = np.arange(s, dtype=np.float32)[None, :] + 0.5
    wave = lambda amp, cells: amp * s * _smooth_field(rng, (1, s), (1, cells))  # noqa: E731
    skin = 0.05 * s + wave(0.006, 4)
    fat = 0.2 * s + rng.uniform(-0.03, 0.03) * s + wave(0.03, 5)
    muscle = 0.82 * s + rng.uniform(-0.04, 0.03) * s + wave(0.025, 4)

    def step(edge, width=1.2):  # soft 0 -> 1 transition at depth ``edge``
        return 1.0 / (1.0 + np.exp(-(y - edge) / width))

    echo = 150.0 * np.exp(-((y - skin) / 1.2) ** 2)  # bright skin line
    fat_lobules = 1.0 + 0.25 * _smooth_field(rng, (s, s), (6, 10))
    gland_tex = 1.0 + 0.18 * _smooth_field(rng, (s, s), (8, 8))
    echo = echo + (1 - step(fat)) * step(skin + 1.5) * 62.0 * fat_lobules
    echo = echo + step(fat) * (1 - step(muscle)) * rng.uniform(118, 138) * gland_tex
    striation = 1.0 + 0.3 * np.sin(2 * math.pi * (y - muscle) / rng.uniform(2.5, 3.5) + 0.2 * x / s)
    echo = echo + step(muscle) * 95.0 * striation
    return (echo * np.exp(-rng.uniform(0.2, 0.45) * y / s)).astype(np.float32)  # depth attenuation


def speckle(rng: np.random.Generator, s: int, looks: float) -> np.ndarray:
    """Multiplicative speckle of mean ~1: gamma intensity, blurred laterally (elongated grains)."""
    g = rng.gamma(looks, 1.0 / looks, (s, s + 2)).astype(np.float32)
    return 0.25 * g[:, :-2] + 0.5 * g[:, 1:-1] + 0.25 * g[:, 2:]


def lesion_shape(label: str, yy, xx, cy: float, cx: float, r0: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean lesion mask at supersampled resolution (``label`` is benign or malignant)."""
    dy, dx = yy - cy, xx - cx
    if label == "benign":  # smooth ellipse, wider than tall, tilted a little
        ratio = rng.uniform(1.3, 1.8)
        a, b = r0 * math.sqrt(ratio), r0 / math.sqrt(ratio)
        t = rng.uniform(-0.35, 0.35)
        u, v = dx * math.cos(t) + dy * math.sin(t), -dx * math.sin(t) + dy * math.cos(t)
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    if label == "malignant":  # irregular radius with spicules; taller than wide
        ang = np.arctan2(dy, dx)
        rad = np.sqrt((dy / 1.1) ** 2 + (dx / 0.9) ** 2)
        r = np.ones_like(ang)
        for k in (2, 3, 5):
            r += rng.uniform(0.04, 0.1) * np.cos(k * ang + rng.uniform(0, 2 * math.pi))
        for a0 in rng.uniform(0, 2 * math.pi, int(rng.integers(7, 12))):
            d = np.angle(np.exp(1j * (ang - a0)))
            r += rng.uniform(0.3, 0.55) * np.exp(-(d / rng.uniform(0.1, 0.16)) ** 2)
        return rad <= 0.85 * r0 * r
    raise ValueError(f"no lesion shape for class {label!r}; expected benign or malignant")


def render_ultrasound(label: str, cfg: UltrasoundConfig, rng: np.random.Generator):
    """Draw one image.  Returns (gray uint8 HxW, mask uint8 HxW, lesion_box or None).

    The box is in continuous pixel coordinates ``(x0, y0, x1, y1)`` and is the tight box of the
    mask (so mask and box agree exactly).
    """
    if label not in CLASSES:
        raise ValueError(f"unknown class {label!r}; expected one of {CLASSES}")
    s, ss = cfg.size, cfg.size * SUPERSAMPLE
    echo = tissue_echo(rng, s)
    spk = speckle(rng, s, cfg.looks)
    scale = s / 64
    r0 = rng.uniform(*cfg.lesion_radius) * scale
    ext = MAX_EXTENT * r0
    cx = rng.uniform(ext + 1, s - ext - 1)
    cy = rng.uniform(TOP_KEEPOUT * s + ext + 1, s - ext - 2)
    # the lesion draws from its own stream: everything above is identical whatever the class
    les_rng = np.random.default_rng(rng.integers(2 ** 63))
    noise = rng.normal(0, 1.5, (s, s))  # electronic noise, after the lesion split: class-independent too
    mask = np.zeros((s, s), np.uint8)
    box = None
    if label != "normal":
        yy, xx = (np.mgrid[0:ss, 0:ss].astype(np.float32) + 0.5) / SUPERSAMPLE
        shape = lesion_shape(label, yy, xx, cy, cx, r0, les_rng)
        cov = shape.reshape(s, SUPERSAMPLE, s, SUPERSAMPLE).mean(axis=(1, 3))
        inside = les_rng.uniform(*(cfg.benign_echo if label == "benign" else cfg.malignant_echo))
        tex = 1.0 + (0.05 if label == "benign" else 0.25) * _smooth_field(les_rng, (s, s), (5, 5))
        echo = echo * (1 - cov * (1 - inside * tex))
        if label == "malignant":  # posterior acoustic shadowing: columns the lesion covers, below it
            thick = cov.sum(axis=0)
            width = np.clip(thick / (0.6 * thick.max()), 0, 1)  # soft shadow edges under thin parts
            rows = np.arange(s)[:, None]
            bottom = np.where(cov > 0, rows, -1).max(axis=0)
            below = np.clip((rows - bottom[None, :]) / 3.0, 0, 1) * (bottom[None, :] >= 0)
            echo = echo * (1 - les_rng.uniform(*cfg.shadow_strength) * width[None, :] * below)
        lesion = cov >= 0.5
        mask[lesion] = LESION
        ys, xs = np.nonzero(lesion)
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    img = np.sqrt(np.clip(echo * spk, 0, None) * 255.0) * 0.9 + noise  # log-like compression
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), mask, box


Overlay = Callable[[int, str, str, np.ndarray, np.ndarray], list]


def write_dataset(out_dir: str | Path, key: dict, cfg: UltrasoundConfig, progress: bool = True,
                  overlay: Overlay | None = None, extra_column: str | None = None) -> Path:
    """Write ``cfg``'s images to ``out_dir`` (re-used as is when its manifest equals ``key``).

    ``overlay(index, label, split, image, mask)`` may draw on the image and mask in place and
    returns extra VOC objects ``[(name, box), ...]``; with ``extra_column`` its return value's
    length (0 or more objects) is written to that labels.csv column.
    """
    out = Path(out_dir)
    manifest = out / "manifest.json"
    try:
        if json.loads(manifest.read_text()) == json.loads(json.dumps(key)):
            log.info("demo data in %s is up to date", out)
            return out
    except (OSError, json.JSONDecodeError):
        pass
    for sub in ("images", "masks", "annotations"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)  # a partial rewrite must never look complete
    splits = ["train"] * cfg.n_train + ["val"] * cfg.n_val + ["test"] * cfg.n_test
    rows = []
    for i, split in enumerate(tqdm(splits, desc="generate ultrasound images", disable=not progress, unit="img")):
        label = CLASSES[i % len(CLASSES)]  # balanced within every split
        gray, mask, box = render_ultrasound(label, cfg, np.random.default_rng([cfg.seed, i]))
        objects = [] if box is None else [("lesion", box)]
        extra = overlay(i, label, split, gray, mask) if overlay else []
        image_id = f"{split}_{i:05d}"
        Image.fromarray(gray, mode="L").save(out / "images" / f"{image_id}.png")
        Image.fromarray(mask, mode="L").save(out / "masks" / f"{image_id}.png")
        xml = voc_xml(f"{image_id}.png", cfg.size, objects + extra).replace("<depth>3</depth>", "<depth>1</depth>")
        (out / "annotations" / f"{image_id}.xml").write_text(xml)
        rows.append((image_id, label, split) + ((len(extra),) if extra_column else ()))
    np.random.default_rng(cfg.seed).shuffle(rows)  # row order carries no class information
    with open(out / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "label", "split"] + ([extra_column] if extra_column else []))
        w.writerows(rows)
    manifest.write_text(json.dumps(key, indent=1))
    log.info("wrote %d ultrasound demo images to %s", len(rows), out)
    return out


def generate_ultrasound(out_dir: str | Path, cfg: UltrasoundConfig = UltrasoundConfig(),
                        progress: bool = True) -> Path:
    """Write the ultrasound-like dataset to ``out_dir`` (cached by its manifest)."""
    return write_dataset(out_dir, cfg.key(), cfg, progress)


def ultrasound_spec(root: str | Path, size: int = 64) -> DatasetSpec:
    """The spec of a generated ultrasound set: region ``lesion`` (mask 255) and box ``lesion``."""
    return DatasetSpec(
        name="demo_ultrasound", root=str(root), labels="labels.csv", image_template="images/{id}.png",
        split_column="split", mask_template="masks/{id}.png", mask_regions=(("lesion", (LESION,)),),
        boxes_template="annotations/{id}.xml", box_classes=("lesion",), input_size=size, resize="resize",
        classes=CLASSES)
