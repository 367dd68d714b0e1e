"""Confounded variant of the ultrasound-like demo set: a burned-in text label that gives the class away.

Why the ultrasound set: burned-in scanner annotations (text, calipers, rulers) are a documented
shortcut in real breast-ultrasound data -- they are added more often to suspicious lesions -- and
the scan's top rows (skin line) are where such labels sit, away from the lesion.

Each image is the ultrasound image of the same index and seed (byte-identical where no marker is
drawn) plus, for some images, a small text-like label in the top-right corner: a light tag with
four random dark 3 x 5 "glyphs", burned into the image like a scanner annotation.  Which images
carry it is a fixed quota per split and class:

* ``train`` / ``val`` (``confounded_splits``): ``marker_rate_class`` of the ``marker_class``
  images and ``marker_rate_other`` of every other class's images;
* ``test``: the same overall rate, equal in every class -- the marker says nothing about the class.

The marker is annotated as a region of its own: mask value ``MARKER`` (64) next to the lesion's
255, and a VOC object ``marker``.  Lesions stay below ``TOP_KEEPOUT`` of the height and the
marker above it, so they never overlap.  ``labels.csv`` has an extra ``marker`` column (0 / 1).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..dataset import SPLITS, DatasetSpec
from .ultrasound import CLASSES, LESION, TOP_KEEPOUT, UltrasoundConfig, ultrasound_spec, write_dataset

log = logging.getLogger(__name__)

MARKER = 64
# malignant cues (echo, shadow) subtler than the plain set's, so that in a short fine-tune the label
# is the easier cue -- the situation in which real models take the shortcut (bench/confounder_check.py)
SUBTLE = UltrasoundConfig(malignant_echo=(0.22, 0.32), shadow_strength=(0.1, 0.2))
GLYPHS = 4  # characters per label
GLYPH_W, GLYPH_H = 3, 5


@dataclass(frozen=True)
class ConfoundedConfig:
    ultrasound: UltrasoundConfig = field(default_factory=lambda: SUBTLE)
    marker_class: str = "malignant"
    marker_rate_class: float = 0.95  # confounded splits: share of ``marker_class`` images with the marker
    marker_rate_other: float = 0.03  # confounded splits: share of each other class's images with it
    confounded_splits: tuple[str, ...] = ("train", "val")  # the others get the marker class-independently
    version: int = 4  # bump when the marker rules change

    def __post_init__(self):
        if self.marker_class not in CLASSES:
            raise ValueError(f"marker_class {self.marker_class!r} is not one of {CLASSES}")
        for name in ("marker_rate_class", "marker_rate_other"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if set(self.confounded_splits) - set(SPLITS):
            raise ValueError(f"confounded_splits {self.confounded_splits} must be among {SPLITS}")

    @property
    def overall_rate(self) -> float:
        """Marker rate over all classes (balanced), kept in the unconfounded splits."""
        n = len(CLASSES)
        return (self.marker_rate_class + (n - 1) * self.marker_rate_other) / n

    def key(self) -> dict:
        return asdict(self)


def marker_plan(cfg: ConfoundedConfig) -> np.ndarray:
    """Boolean per image index: does it carry the marker?  Exact quotas per (split, class)."""
    u = cfg.ultrasound
    splits = ["train"] * u.n_train + ["val"] * u.n_val + ["test"] * u.n_test
    labels = [CLASSES[i % len(CLASSES)] for i in range(len(splits))]  # as write_dataset assigns them
    rng = np.random.default_rng([u.seed, 0x3A7])
    plan = np.zeros(len(splits), bool)
    for split in SPLITS:
        for label in CLASSES:
            idx = np.array([i for i, (s, y) in enumerate(zip(splits, labels)) if s == split and y == label], int)
            if split in cfg.confounded_splits:
                rate = cfg.marker_rate_class if label == cfg.marker_class else cfg.marker_rate_other
            else:
                rate = cfg.overall_rate
            plan[rng.permutation(idx)[:round(rate * len(idx))]] = True
    return plan


def marker_box(size: int, right: bool) -> tuple[int, int, int, int]:
    """Integer pixel box ``(x0, y0, x1, y1)`` of the label in the top-left or top-right corner."""
    k = max(1, round(size / 64))  # glyph pixel size
    w, h = k * (GLYPHS * (GLYPH_W + 1) + 1), k * (GLYPH_H + 2)
    y0 = max(1, round(0.03 * size))
    x0 = size - w - y0 if right else y0
    if y0 + h > TOP_KEEPOUT * size:
        raise ValueError(f"image size {size} too small for a marker above the lesion keep-out")
    return x0, y0, x0 + w, y0 + h


def draw_marker(gray: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[float, ...]:
    """Draw a text-like label in place (image and mask); returns its box as floats."""
    size = gray.shape[0]
    x0, y0, x1, y1 = marker_box(size, right=True)  # where the scanner writes it: one fixed place
    if (mask[y0:y1, x0:x1] != 0).any():
        raise AssertionError("marker overlaps the lesion")  # excluded by TOP_KEEPOUT; never silently
    k = max(1, round(size / 64))
    ink = np.zeros((GLYPH_H + 2, GLYPHS * (GLYPH_W + 1) + 1), bool)
    for g in range(GLYPHS):
        bits = rng.random((GLYPH_H, GLYPH_W)) < 0.55
        bits[rng.integers(GLYPH_H), rng.integers(GLYPH_W)] = True  # never a blank glyph
        ink[1:1 + GLYPH_H, 1 + g * (GLYPH_W + 1):1 + g * (GLYPH_W + 1) + GLYPH_W] = bits
    # a light label tag with dark characters, burned into the image like a scanner annotation: salient,
    # and unlike anything in the tissue (a dark tag would look like a hypoechoic lesion)
    tag = np.where(ink, rng.integers(20, 50), rng.integers(200, 230)).astype(np.uint8)
    gray[y0:y1, x0:x1] = np.kron(tag, np.ones((k, k), np.uint8))
    mask[y0:y1, x0:x1] = MARKER
    return float(x0), float(y0), float(x1), float(y1)


def generate_confounded(out_dir: str | Path, cfg: ConfoundedConfig = ConfoundedConfig(),
                        progress: bool = True) -> Path:
    """Write the confounded ultrasound-like dataset to ``out_dir`` (cached by its manifest)."""
    plan = marker_plan(cfg)
    seed = cfg.ultrasound.seed

    def overlay(i, label, split, gray, mask):
        if not plan[i]:
            return []
        return [("marker", draw_marker(gray, mask, np.random.default_rng([seed, i, 1])))]

    root = write_dataset(out_dir, cfg.key(), cfg.ultrasound, progress, overlay=overlay, extra_column="marker")
    log.info("confounded set: marker on %d of %d images", int(plan.sum()), len(plan))
    return root


def confounded_spec(root: str | Path, size: int = 64) -> DatasetSpec:
    """Spec of a generated confounded set: regions ``lesion`` (mask 255) and ``marker`` (mask 64)."""
    return replace(ultrasound_spec(root, size), name="demo_ultrasound_confounded",
                   mask_regions=(("lesion", (LESION,)), ("marker", (MARKER,))))
