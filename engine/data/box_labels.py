"""Detection-only datasets: image labels and named regions from the boxes.

``label_from_boxes`` classifies an image by a rule over its boxes (no label table needed):

* a table ``class -> box classes``, e.g. ``{ platelets = ["Platelets"] }``: the image is of the first
  class (in table order) that has a box of one of its box classes, else of the negative class
  (``no_platelets`` for a one-entry table, ``none`` otherwise; ``classes`` renames them, negative
  first);
* ``"largest"``: the class of the image's largest box (by area; the first class in ``classes`` order
  on a tie); an image without a box is skipped (noted).

``box_regions`` names several box regions of one dataset, e.g. ``{ wbc = ["WBC"], platelets =
["Platelets"] }``: each is the union of the boxes of its classes, scored side by side.
Both read the boxes through :func:`engine.data.ground_truth.read_boxes` with the class filter
replaced, so every box format (VOC, YOLO, COCO, CSV) works the same way.
"""
from __future__ import annotations

import dataclasses

import numpy as np


def box_label_classes(spec) -> tuple[str, ...]:
    """The class names of a ``label_from_boxes`` dataset (index = label)."""
    rule = spec.label_from_boxes
    if rule == "largest":
        return tuple(spec.classes or spec.yolo_names)
    keys = tuple(k for k, _ in rule)
    derived = (f"no_{keys[0]}" if len(keys) == 1 else "none", *keys)
    return tuple(spec.classes) if spec.classes and len(spec.classes) == len(derived) else derived


def boxes_of(rec, spec, box_classes: tuple[str, ...], size=None) -> np.ndarray:
    """The cleaned boxes of ``rec`` whose class is one of ``box_classes`` ((0, 4) when none)."""
    from .ground_truth import read_boxes
    boxes = read_boxes(rec, dataclasses.replace(spec, box_classes=tuple(box_classes)), size, [])
    return np.zeros((0, 4)) if boxes is None else boxes


def label_from_boxes(rec, spec, classes: tuple[str, ...]) -> int | None:
    """The label index of ``rec`` by the spec's rule (None: 'largest' and the image has no box)."""
    rule = spec.label_from_boxes
    if rule == "largest":
        best, best_area = None, 0.0
        names = spec.yolo_names if not spec.classes else spec.classes
        for k, name in enumerate(names):
            b = boxes_of(rec, spec, (name,))
            area = float(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).max()) if len(b) else 0.0
            if area > best_area:
                best, best_area = k, area
        return best
    for k, (_, box_classes) in enumerate(rule, start=1):
        if len(boxes_of(rec, spec, box_classes)):
            return k
    return 0
