"""Readers for annotation files: Pascal VOC boxes and value-coded mask PNGs (others: boxfiles, coco)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DatasetError


class AnnotationError(DatasetError):
    """A problem with one annotation file; the message names the file and the reason."""


def read_voc_boxes(path: Path, classes: tuple[str, ...] = (), keep_degenerate: bool = False) -> np.ndarray:
    """Boxes of a Pascal VOC XML file as ``(n, 4)`` continuous coordinates ``x0, y0, x1, y1``.

    VOC stores 1-based inclusive pixel indices, so ``xmin`` maps to ``xmin - 1`` and ``xmax``
    (inclusive) to ``xmax`` (exclusive end).  ``classes`` keeps only objects with those names.
    Degenerate boxes (no area) are dropped unless ``keep_degenerate`` (check-data reports them);
    boxes partly outside the image are kept and clipped later by the transform.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise AnnotationError(f"{path}: not a readable VOC XML file ({exc})") from None
    boxes = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if classes and name not in classes:
            continue
        bb = obj.find("bndbox")
        if bb is None:
            raise AnnotationError(f"{path}: object {name!r} has no <bndbox>")
        try:
            xmin, ymin, xmax, ymax = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise AnnotationError(f"{path}: object {name!r} has a non-numeric or missing box coordinate") from None
        x0, y0, x1, y1 = xmin - 1, ymin - 1, xmax, ymax
        if keep_degenerate or (x1 > x0 and y1 > y0):
            boxes.append((x0, y0, x1, y1))
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def voc_size(path: Path) -> tuple[int, int] | None:
    """The ``<size>`` (width, height) a VOC file declares, None when absent or unreadable."""
    try:
        size = ET.parse(path).getroot().find("size")
        return (int(float(size.findtext("width"))), int(float(size.findtext("height")))) if size is not None else None
    except (ET.ParseError, OSError, TypeError, ValueError):
        return None


def read_mask(path: Path, expected_size: tuple[int, int] | None) -> np.ndarray:
    """A single-channel mask (8- or 16-bit values, palette indices for a palette PNG, a bool array for a
    1-bit image); its size must equal the image's ``(width, height)`` (not checked when ``expected_size``
    is None)."""
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im.convert("L") if im.mode not in ("1", "L", "P", "I", "I;16") else im)  # "1": bool
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise AnnotationError(f"{path}: not a readable mask image ({exc})") from None
    if arr.ndim != 2:
        raise AnnotationError(f"{path}: mask must be single-channel, got shape {arr.shape}")
    h, w = arr.shape
    if expected_size is not None and (w, h) != tuple(expected_size):
        raise AnnotationError(
            f"{path}: mask is {w}x{h} but its image is {expected_size[0]}x{expected_size[1]}")
    return arr


def mask_region(mask: np.ndarray, values: tuple[int, ...]) -> np.ndarray:
    """Boolean region of the pixels whose value is one of ``values``."""
    return np.isin(mask, np.asarray(values))
