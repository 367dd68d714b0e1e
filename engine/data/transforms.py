"""Geometric transforms that move an image, its boxes and its masks together.

Two modes bring an image of any size to the model's square input ``size``:

* ``resize``    -- stretch to ``size x size`` (aspect ratio not kept);
* ``letterbox`` -- scale by ``min(size / W, size / H)``, centre, pad with zeros.

Both are described by one affine map ``x' = sx * x + ox``, ``y' = sy * y + oy`` on continuous
pixel coordinates (pixel ``i`` spans ``[i, i + 1)``), returned as a :class:`Geometry` so that boxes
are mapped exactly like the pixels.  Images are resampled bilinearly (PIL, anti-aliased when
shrinking); masks are resampled with the same filter as a float coverage map and thresholded at
0.5, so a region keeps its area instead of the aliasing of a nearest-neighbour resize.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

RESIZE_MODES = ("resize", "letterbox")


@dataclass(frozen=True)
class Geometry:
    """Affine map from source pixels to model-input pixels plus the resampled content box."""

    size: int
    sx: float
    sy: float
    ox: float
    oy: float
    content_w: int  # width/height of the resampled image inside the canvas
    content_h: int
    left: int
    top: int

    def map_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """Map ``(n, 4)`` boxes ``x0, y0, x1, y1`` and clip them to the canvas."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
        b[:, [0, 2]] = b[:, [0, 2]] * self.sx + self.ox
        b[:, [1, 3]] = b[:, [1, 3]] * self.sy + self.oy
        return np.clip(b, 0, self.size)


def compute_geometry(width: int, height: int, size: int, mode: str) -> Geometry:
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode {mode!r} is not one of {RESIZE_MODES}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image has an empty size {width}x{height}")
    if mode == "resize":
        return Geometry(size, size / width, size / height, 0.0, 0.0, size, size, 0, 0)
    scale = min(size / width, size / height)
    cw, ch = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = (size - cw) // 2, (size - ch) // 2
    return Geometry(size, cw / width, ch / height, float(left), float(top), cw, ch, left, top)


def transform_image(img: Image.Image | np.ndarray, geo: Geometry) -> np.ndarray:
    """PIL image or (H, W, 3) array -> float32 array (size, size, 3) in [0, 1].

    PIL images and uint8 arrays are resampled as 8-bit RGB; float arrays (16-bit or DICOM sources,
    already in [0, 1]) channel by channel in float, so no precision is lost."""
    out = np.zeros((geo.size, geo.size, 3), np.float32)
    box = (slice(geo.top, geo.top + geo.content_h), slice(geo.left, geo.left + geo.content_w))
    if isinstance(img, np.ndarray) and img.dtype != np.uint8:
        for c in range(3):
            ch = Image.fromarray(np.ascontiguousarray(img[..., c], dtype=np.float32), mode="F")
            out[box + (c,)] = np.asarray(ch.resize((geo.content_w, geo.content_h), Image.BILINEAR))
        return np.clip(out, 0.0, 1.0)
    pil = Image.fromarray(img) if isinstance(img, np.ndarray) else img.convert("RGB")
    res = pil.resize((geo.content_w, geo.content_h), Image.BILINEAR)
    out[box] = np.asarray(res, np.float32) / 255.0
    return out


def transform_mask(mask: np.ndarray, geo: Geometry) -> np.ndarray:
    """Boolean (H, W) mask -> boolean (size, size) mask, area-preserving (coverage >= 0.5)."""
    out = np.zeros((geo.size, geo.size), bool)
    cov = Image.fromarray(mask.astype(np.float32), mode="F").resize((geo.content_w, geo.content_h), Image.BILINEAR)
    out[geo.top:geo.top + geo.content_h, geo.left:geo.left + geo.content_w] = np.asarray(cov) >= 0.5
    return out


def rasterise_boxes(boxes: np.ndarray, size: int) -> np.ndarray:
    """Union of boxes as a boolean (size, size) mask: a pixel is inside when its centre is."""
    region = np.zeros((size, size), bool)
    centres = np.arange(size) + 0.5
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        cols = (centres >= x0) & (centres < x1)
        rows = (centres >= y0) & (centres < y1)
        region |= rows[:, None] & cols[None, :]
    return region


def box_from_mask(mask: np.ndarray) -> np.ndarray:
    """Tight bounding box ``(1, 4)`` of a boolean mask (``(0, 4)`` when empty)."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return np.zeros((0, 4))
    return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=np.float64)
