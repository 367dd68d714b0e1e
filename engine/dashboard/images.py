"""Re-load a stored image and its regions for display, only from the dataset's recorded root.

The dashboard shows exactly what was scored: the image goes through the same loader and transform
(resize / letterbox to the model input) as in the run, using the dataset spec stored with it.
A stored path that resolves outside the dataset root is refused.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..data import DatasetSpec, Record, Sample, load_sample


class UnsafePath(ValueError):
    pass


def spec_from_json(spec_json: str | dict, root: str) -> DatasetSpec:
    d = json.loads(spec_json) if isinstance(spec_json, str) else dict(spec_json)
    d["root"] = root
    for k in ("id_column", "label_column", "box_classes", "split_fractions"):
        if d.get(k) is not None:
            d[k] = tuple(d[k])
    if d.get("classes") is not None:
        d["classes"] = tuple(d["classes"])
    d["mask_regions"] = tuple((name, tuple(vals)) for name, vals in d.get("mask_regions") or ())
    try:
        return DatasetSpec(**d)
    except TypeError as exc:  # a spec written by another version, or a synthetic database
        raise ValueError(f"the stored dataset spec cannot be read by this version: {exc}") from None


def _inside(root: Path, rel: str | None) -> Path | None:
    if rel is None or (isinstance(rel, float)):
        return None
    p = (root / rel).resolve()
    if not p.is_relative_to(root):
        raise UnsafePath(f"stored path {rel!r} lies outside the dataset root {root}; refusing to read it")
    return p


def load_stored_sample(root: str, spec_json, image_id: str, label: int, path: str,
                       mask_path: str | None = None, boxes_path: str | None = None) -> Sample:
    root_p = Path(root).resolve()
    spec = spec_from_json(spec_json, str(root_p))
    rec = Record(image_id=image_id, label=int(label), split="", image_path=_inside(root_p, path),
                 mask_path=_inside(root_p, mask_path), boxes_path=_inside(root_p, boxes_path))
    return load_sample(rec, spec)


def load_row_sample(row: dict) -> Sample:
    """:func:`load_stored_sample` from a query row holding root, spec, image_id, label and the paths."""
    return load_stored_sample(row["root"], row["spec"], row["image_id"], row["label"], row["path"],
                              row["mask_path"], row["boxes_path"])
