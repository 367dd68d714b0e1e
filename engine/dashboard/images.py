"""Re-load a stored image and its regions for display, only from the dataset's recorded root.

The dashboard shows exactly what was scored: the record is listed again from the stored dataset spec
by the same code as in the run (:func:`engine.data.load_records`: every mask file a glob matches, the
named box regions), and the image and its regions go through the same loader and region builder
(:func:`engine.data.load_sample`, :func:`engine.data.regions.build_regions`).  A stored path that
resolves outside the dataset root is refused.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..data import DatasetError, DatasetSpec, Record, load_records
from ..data.paths import confine

if TYPE_CHECKING:
    from ..data.dataset import Sample


class UnsafePath(ValueError):
    pass


def spec_from_json(spec_json: str | dict, root: str) -> DatasetSpec:
    d = json.loads(spec_json) if isinstance(spec_json, str) else dict(spec_json)
    d["root"] = root
    try:
        return DatasetSpec(**d)
    except TypeError as exc:  # a spec written by another version, or a synthetic database
        raise ValueError(f"the stored dataset spec cannot be read by this version: {exc}") from None


def _inside(root: Path, rel: str | None, follow: bool = False) -> Path | None:
    """A stored path, confined to the root as the loader confines it (symbolic links only when the
    spec follows them)."""
    if rel is None or (isinstance(rel, float)):
        return None
    try:
        return confine(root / rel, root, follow, f"stored path {rel!r}")
    except DatasetError as exc:
        raise UnsafePath(f"{exc}; refusing to read it") from None


@functools.lru_cache(maxsize=8)
def _records(spec: DatasetSpec) -> dict[str, Record]:
    return {r.image_id: r for r in load_records(spec)[0]}


def find_record(spec: DatasetSpec, image_id: str) -> Record | None:
    """The record the run scored for ``image_id`` (listed again from the spec; cached per spec)."""
    try:
        return _records(spec).get(image_id)
    except DatasetError:
        return None


def load_stored_sample(root: str, spec_json, image_id: str, label: int, path: str,
                       mask_path: str | None = None, boxes_path: str | None = None) -> Sample:
    """The sample as scored: the record listed again from the stored spec must be the stored one
    (same image file); otherwise (files changed since the run) it is not shown, since its regions
    might not be the ones scored.  A stored path outside the root is refused."""
    root_p = Path(root).resolve()
    spec = spec_from_json(spec_json, str(root_p))
    stored = _inside(root_p, path, spec.follow_symlinks)
    _inside(root_p, mask_path, spec.follow_symlinks), _inside(root_p, boxes_path, spec.follow_symlinks)
    rec = find_record(spec, image_id)
    if rec is None or rec.image_path != stored:
        raise ValueError(f"image {image_id!r} is no longer listed by its dataset spec under {root_p} as it was "
                         f"in the run (files moved or changed?); its regions cannot be shown as scored")
    from ..data.dataset import load_sample  # torch: only when an image is drawn
    return load_sample(rec, spec)


def load_row_sample(row: dict) -> Sample:
    """:func:`load_stored_sample` from a query row holding root, spec, image_id, label and the paths."""
    return load_stored_sample(row["root"], row["spec"], row["image_id"], row["label"], row["path"],
                              row["mask_path"], row["boxes_path"])
