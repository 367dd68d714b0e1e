"""Box readers besides VOC: YOLO txt (one file per image) and one CSV/TSV/Parquet table of boxes.

All readers return raw ``(n, 4)`` boxes ``x0, y0, x1, y1`` in continuous source-pixel coordinates
(pixel ``i`` spans ``[i, i + 1)``), after the class filter and *before* any cleaning: degenerate
boxes and boxes outside the image are judged (and reported) by :mod:`engine.data.ground_truth`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .annotations import AnnotationError
from .errors import DatasetError
from .tables import pick_column, read_table


def read_yolo_boxes(path: Path, width: int, height: int, classes: tuple[str, ...] = (),
                    names: tuple[str, ...] = ()) -> np.ndarray:
    """YOLO txt: one object per line ``class cx cy w h`` normalised to [0, 1] by the image size.

    ``classes`` keeps objects whose class id, or name (``names[id]``), is listed.  A line with more
    than five numbers is a YOLO segmentation polygon; its bounding box is used.  A missing file means
    the image has no objects (the YOLO convention)."""
    if not path.is_file():
        return np.zeros((0, 4))
    boxes = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: not a readable YOLO label file ({exc})") from None
    for n, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            cls = str(int(float(parts[0])))
            vals = [float(v) for v in parts[1:]]
        except ValueError:
            raise AnnotationError(f"{path}: line {n} is not 'class cx cy w h' numbers: {line.strip()!r}") from None
        if len(vals) < 4 or (len(vals) > 4 and len(vals) % 2):
            raise AnnotationError(f"{path}: line {n} has {len(vals)} coordinates; expected 4 (box) or an even "
                                  f"number >= 6 (polygon)")
        name = names[int(cls)] if 0 <= int(cls) < len(names) else cls
        if classes and cls not in classes and name not in classes:
            continue
        if len(vals) == 4:
            cx, cy, w, h = vals
            x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        else:
            xs, ys = vals[0::2], vals[1::2]
            x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        boxes.append((x0 * width, y0 * height, x1 * width, y1 * height))
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


@dataclass(frozen=True)
class BoxTable:
    """Boxes of one table, by image id (several rows per image: several boxes)."""

    path: Path
    boxes: dict  # image id -> list of (x0, y0, x1, y1, class name or "")
    problems: tuple[str, ...]  # bad rows, reported by check-data and skipped

    def for_image(self, image_id: str, classes: tuple[str, ...] = ()) -> np.ndarray:
        rows = [b[:4] for b in self.boxes.get(image_id, ()) if not classes or b[4] in classes]
        return np.array(rows, dtype=np.float64).reshape(-1, 4)


@functools.lru_cache(maxsize=16)
def _box_table(path: Path, mtime: float, id_cols: tuple, coord_cols: tuple, coords: str,
               class_col: str | None) -> BoxTable:
    header, rows = read_table(path)
    try:
        ic = pick_column(header, id_cols, path, "image id")
        cc = [pick_column(header, c, path, f"box coordinate {c!r}") for c in coord_cols]
        kc = pick_column(header, class_col, path, "box class") if class_col else None
    except DatasetError as exc:
        raise AnnotationError(str(exc)) from None
    out: dict[str, list] = {}
    problems = []
    for n, r in enumerate(rows, start=2):
        try:
            image_id = r[ic].strip()
            a, b, c, d = (float(r[i]) for i in cc)
            cls = r[kc].strip() if kc is not None else ""
        except (IndexError, ValueError):
            problems.append(f"{path}: line {n}: missing or non-numeric box values {r!r}; row skipped")
            continue
        if not image_id:
            problems.append(f"{path}: line {n}: no image id; row skipped")
            continue
        box = (a, b, c, d) if coords == "xyxy" else (a, b, a + c, b + d)
        out.setdefault(image_id, []).append((*box, cls))
    return BoxTable(path, out, tuple(problems))


def box_table(path: Path, spec) -> BoxTable:
    """The (cached) box table of ``spec.boxes_file``."""
    if not path.is_file():
        raise AnnotationError(f"{path}: box table not found")
    cols = spec.box_columns or (("x0", "y0", "x1", "y1") if spec.box_coords == "xyxy" else ("x", "y", "w", "h"))
    return _box_table(path, path.stat().st_mtime, tuple(spec.box_id_column), tuple(cols), spec.box_coords,
                      spec.box_class_column)
