"""One record's ground truth in source pixels, whatever the annotation format.

:func:`read_ground_truth` returns the boxes (union of all boxes of the filtered classes) and the
mask regions (union over several mask files) of one image, plus the problems that were *handled*
(degenerate boxes dropped, boxes clipped to the image, unexpected mask values ignored); fatal
problems (unreadable file, mask of the wrong size) raise :class:`AnnotationError`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .annotations import AnnotationError, mask_region, read_mask, read_voc_boxes, voc_size
from .boxfiles import box_table, read_yolo_boxes
from .coco import coco_ground_truth, coco_index
from .spec import inside_root


@dataclass
class GroundTruth:
    boxes: np.ndarray | None = None  # (n, 4) x0, y0, x1, y1 in source pixels; None: the spec has no boxes
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # region -> (H, W) bool
    box_sets: dict[str, np.ndarray] = field(default_factory=dict)  # box_regions: name -> (n, 4)
    problems: list[str] = field(default_factory=list)  # handled problems, each naming the file
    notes: list[str] = field(default_factory=list)  # expected and harmless (e.g. a few stray mask pixels)

    @property
    def annotated(self) -> bool:
        """True when there is any box or any non-empty mask region."""
        return ((self.boxes is not None and len(self.boxes) > 0) or any(m.any() for m in self.masks.values())
                or any(len(b) for b in self.box_sets.values()))


def clean_boxes(boxes: np.ndarray, size: tuple[int, int] | None, where: Path | str,
                problems: list[str]) -> np.ndarray:
    """Drop degenerate boxes and boxes wholly outside the image, clip the rest; note each case.

    A box that leaves the image by less than one pixel is clipped silently: rounded coordinates
    (YOLO's six decimals, VOC's 1-based pixel indices) do that on clean data.  Only a real overflow
    (one pixel or more) is reported."""
    keep = []
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        desc = f"box {k + 1} ({x0:g}, {y0:g}, {x1:g}, {y1:g})"
        if not np.isfinite([x0, y0, x1, y1]).all():
            raise AnnotationError(f"{where}: {desc} has coordinates that are not finite numbers")
        if not (x1 > x0 and y1 > y0) or not np.isfinite([x0, y0, x1, y1]).all():
            problems.append(f"{where}: {desc} is degenerate (no area); dropped")
            continue
        if size is not None:
            w, h = size
            if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
                problems.append(f"{where}: {desc} lies outside the {w}x{h} image; dropped")
                continue
            if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
                if max(-x0, -y0, x1 - w, y1 - h) >= 1:
                    problems.append(f"{where}: {desc} extends outside the {w}x{h} image; clipped")
                x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            problems.append(f"{where}: {desc} is implausibly small (under 2 px on a side); kept")
        keep.append((x0, y0, x1, y1))
    return np.array(keep, dtype=np.float64).reshape(-1, 4)


def _lookup_table(rec, tbl, classes):
    for key in (rec.image_id, rec.image_path.name, rec.image_path.stem):
        if key in tbl.boxes:
            return tbl.for_image(key, classes)
    return np.zeros((0, 4))


def _raw_boxes(rec, spec, size, gt: GroundTruth) -> np.ndarray | None:
    fmt = spec.boxes_format
    if fmt in ("voc", "yolo"):
        p = rec.boxes_path
        if p is None:
            return None
        if fmt == "voc":
            if not p.is_file():
                raise AnnotationError(f"{p}: box annotation file not found")
            declared = voc_size(p) if size is not None else None
            if declared is not None and declared != (0, 0) and declared != tuple(size):
                gt.problems.append(f"{p}: declares a {declared[0]}x{declared[1]} image but the image is "
                                   f"{size[0]}x{size[1]}; boxes used as given")
            return read_voc_boxes(p, spec.box_classes, keep_degenerate=True)
        w, h = size if size is not None else (1, 1)
        return read_yolo_boxes(p, w, h, spec.box_classes, spec.yolo_names)
    if not spec.boxes_file:
        return None
    path = inside_root(spec.root, spec.boxes_file, "boxes_file", spec.follow_symlinks)
    if fmt == "csv":
        return _lookup_table(rec, box_table(path, spec), spec.box_classes)
    index = coco_index(path)
    entry = index.find(rec.image_path)
    if entry is None:
        return np.zeros((0, 4))
    w, h = size if size is not None else (entry.width, entry.height)
    boxes, seg = coco_ground_truth(entry, path, spec.box_classes, w, h, bool(spec.segmentation_region))
    if seg is not None:
        gt.masks[spec.segmentation_region] = seg
    return boxes


STRAY_MASK_SHARE = 0.01  # unexpected mask values on fewer pixels than this share are noted, not warned about


def _masks(rec, spec, size, gt: GroundTruth):
    paths = [p for p in (rec.mask_path, *rec.more_masks) if p is not None]
    if not paths or not spec.mask_regions:
        return
    allowed = {0}.union(*(set(v) for _, v in spec.mask_regions))
    for p in paths:
        if not p.is_file():
            raise AnnotationError(f"{p}: mask file not found")
        raw = read_mask(p, size)
        if raw.dtype == bool:  # a 1-bit mask: its set pixels carry the value mask_regions gives them, 1 or 255
            raw = raw.astype(np.uint8) * (255 if 255 in allowed and 1 not in allowed else 1)
        if size is None:
            size = (raw.shape[1], raw.shape[0])
        extra = np.setdiff1d(np.unique(raw), np.fromiter(allowed, dtype=np.int64))
        if len(extra):
            n = int(np.isin(raw, extra).sum())
            share = n / max(raw.size, 1)
            # a few stray pixels (anti-aliased or resampled masks) are expected: a note, not a warning
            (gt.notes if share < STRAY_MASK_SHARE else gt.problems).append(
                f"{p}: mask has unexpected values {extra.tolist()[:8]} on {n} pixels ({share:.2%} of the mask; "
                f"expected {sorted(allowed)}); treated as background")
        for name, values in spec.mask_regions:
            m = mask_region(raw, values)
            gt.masks[name] = gt.masks[name] | m if name in gt.masks else m


def read_boxes(rec, spec, size, problems: list[str], gt: GroundTruth | None = None) -> np.ndarray | None:
    """The cleaned boxes of ``rec`` of ``spec.box_classes`` (None: the spec has no boxes)."""
    raw = _raw_boxes(rec, spec, size, gt if gt is not None else GroundTruth())
    if raw is None:
        return None
    where = rec.boxes_path or Path(spec.root) / (spec.boxes_file or "")
    return clean_boxes(raw, size, where if spec.boxes_format in ("voc", "yolo")
                       else f"{where} (image {rec.image_id!r})", problems)


def read_ground_truth(rec, spec, size: tuple[int, int] | None = None) -> GroundTruth:
    """Boxes and mask regions of ``rec``; ``size`` = the image's (width, height) enables size checks.

    With ``box_regions`` the boxes are read once per named region (its classes) into ``box_sets``
    and ``boxes`` stays None."""
    gt = GroundTruth()
    _masks(rec, spec, size, gt)
    if spec.box_regions:
        for name, classes in spec.box_regions:
            sub = dataclasses.replace(spec, box_classes=tuple(classes))
            boxes = read_boxes(rec, sub, size, gt.problems, gt)
            if boxes is not None:
                gt.box_sets[name] = boxes
        return gt
    gt.boxes = read_boxes(rec, spec, size, gt.problems, gt)
    return gt


def region_names(rec, spec) -> list[str]:
    """Names of the regions a record can have (without reading its files), in a stable order."""
    names = []
    if rec.mask_path is not None:
        names += [n for n, _ in spec.mask_regions]
    if spec.segmentation_region and rec.boxes_path is not None:
        names.append(spec.segmentation_region)
    if spec.box_from_mask and spec.box_from_mask in names:
        names.append("box_from_mask")
    if rec.boxes_path is not None:
        names += [n for n, _ in spec.box_regions] or ["box"]
    return names
