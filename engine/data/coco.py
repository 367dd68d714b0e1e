"""COCO JSON annotations: ``bbox`` boxes and ``segmentation`` polygons / RLE as masks.

An image of the dataset is matched to a COCO ``images`` entry whose ``file_name`` is a trailing part
of the image's path (``a/b.png`` matches ``.../a/b.png``; a bare ``b.png`` matches any folder when it
is unique).  Categories are filtered by name (``box_classes``).  RLE is decoded here: uncompressed
(``counts`` a list) and compressed (``counts`` a string, the COCO run-length text encoding), both
column-major as in the COCO format.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .annotations import AnnotationError


def decode_rle_counts(s: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string (6-bit chunks offset by 48, deltas after the 3rd)."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            if p >= len(s):
                raise ValueError("RLE string ends inside a number")
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_to_mask(rle: dict) -> np.ndarray:
    """Boolean (h, w) mask of a COCO RLE ``{"size": [h, w], "counts": ...}``."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    counts = decode_rle_counts(counts) if isinstance(counts, str) else [int(c) for c in counts]
    if any(c < 0 for c in counts) or sum(counts) != h * w:
        raise ValueError(f"run lengths sum to {sum(counts)}, expected {h}x{w} = {h * w}")
    flat = np.zeros(h * w, bool)
    pos = 0
    for i, c in enumerate(counts):
        if i % 2:
            flat[pos:pos + c] = True
        pos += c
    return flat.reshape((w, h)).T  # column-major


def polygons_to_mask(polygons: list, width: int, height: int) -> np.ndarray:
    """Union of polygons ``[x1, y1, x2, y2, ...]`` (pixel coordinates) as a boolean (height, width) mask."""
    im = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(im)
    for poly in polygons:
        pts = [(float(poly[i]), float(poly[i + 1])) for i in range(0, len(poly) - 1, 2)]
        if len(pts) >= 3:
            draw.polygon(pts, fill=1)
    return np.asarray(im, dtype=bool)


@dataclass(frozen=True)
class CocoImage:
    file_name: str
    width: int
    height: int
    objects: tuple  # (category name, bbox (x, y, w, h) or None, segmentation or None)


@dataclass(frozen=True)
class CocoIndex:
    path: Path
    images: dict  # file_name -> CocoImage
    by_base: dict  # basename -> list of file_names
    problems: tuple[str, ...]

    def find(self, image_path: Path) -> CocoImage | None:
        parts = image_path.parts
        for fn in self.by_base.get(image_path.name, ()):
            fparts = Path(fn).parts
            if tuple(parts[-len(fparts):]) == fparts:
                return self.images[fn]
        return None


@functools.lru_cache(maxsize=8)
def _coco_index(path: Path, mtime: float) -> CocoIndex:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        imgs, anns = doc["images"], doc.get("annotations", [])
        cats = {c["id"]: str(c["name"]) for c in doc.get("categories", [])}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise AnnotationError(f"{path}: not a readable COCO JSON file ({type(exc).__name__}: {exc})") from None
    problems = []
    by_id, objects = {}, {}
    for im in imgs:
        try:
            by_id[im["id"]] = (str(im["file_name"]).replace("\\", "/"), int(im["width"]), int(im["height"]))
        except (KeyError, TypeError, ValueError):
            problems.append(f"{path}: image entry {im!r} lacks id / file_name / width / height; skipped")
    for a in anns:
        if not isinstance(a, dict) or a.get("image_id") not in by_id:
            problems.append(f"{path}: annotation {a.get('id') if isinstance(a, dict) else a!r} refers to no "
                            f"listed image; skipped")
            continue
        name = cats.get(a.get("category_id"), str(a.get("category_id")))
        objects.setdefault(a["image_id"], []).append((name, a.get("bbox"), a.get("segmentation")))
    images, by_base = {}, {}
    for iid, (fn, w, h) in by_id.items():
        if fn in images:
            problems.append(f"{path}: file_name {fn!r} is listed twice; the second entry is ignored")
            continue
        images[fn] = CocoImage(fn, w, h, tuple(objects.get(iid, ())))
        by_base.setdefault(Path(fn).name, []).append(fn)
    return CocoIndex(path, images, by_base, tuple(problems))


def coco_index(path: Path) -> CocoIndex:
    if not path.is_file():
        raise AnnotationError(f"{path}: COCO annotation file not found")
    return _coco_index(path, path.stat().st_mtime)


def coco_ground_truth(entry: CocoImage, index_path: Path, classes: tuple[str, ...], width: int, height: int,
                      want_masks: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw boxes (x0, y0, x1, y1) and, when asked, the union of the segmentations as a (height, width) mask."""
    boxes, mask = [], (np.zeros((height, width), bool) if want_masks else None)
    where = f"{index_path} (image {entry.file_name!r})"
    if (entry.width, entry.height) != (width, height):
        raise AnnotationError(f"{where}: COCO says {entry.width}x{entry.height} but the image is {width}x{height}")
    for name, bbox, seg in entry.objects:
        if classes and name not in classes:
            continue
        if bbox is not None:
            try:
                x, y, w, h = (float(v) for v in bbox)
            except (TypeError, ValueError):
                raise AnnotationError(f"{where}: bbox {bbox!r} is not four numbers") from None
            boxes.append((x, y, x + w, y + h))
        if mask is None or not seg:
            continue
        try:
            if isinstance(seg, list):
                mask |= polygons_to_mask(seg, width, height)
            else:
                m = rle_to_mask(seg)
                if m.shape != (height, width):
                    raise ValueError(f"RLE size {m.shape[1]}x{m.shape[0]} differs from the image {width}x{height}")
                mask |= m
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise AnnotationError(f"{where}: bad segmentation ({exc})") from None
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), mask
