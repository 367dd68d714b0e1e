"""The dataset's own region names, for the dashboard's pickers, outlines and comparisons.

Region names are the dataset's (``lesion``, ``nucleus``, ``wbc``, ...), read from the spec stored with
the dataset (:attr:`engine.data.DatasetSpec.region_list`), never assumed to be ``mask`` / ``box``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..data import DatasetSpec


@dataclass(frozen=True)
class DatasetRegions:
    all: tuple[str, ...] = ()    # display order: mask regions, box_from_mask, box regions
    masks: tuple[str, ...] = ()  # regions drawn from masks (or COCO segmentations)
    boxes: tuple[str, ...] = ()  # given box regions ('box' or the box_regions names)
    box_from_mask: str | None = None  # the mask region 'box_from_mask' is derived from


def spec_regions(spec_json) -> DatasetRegions:
    """The regions of a stored dataset spec (JSON text or dict); empty for an unreadable spec."""
    try:
        d = json.loads(spec_json) if isinstance(spec_json, str) else dict(spec_json or {})
        spec = DatasetSpec(**d)
    except (TypeError, ValueError):
        return DatasetRegions()
    masks = spec.mask_region_list
    boxes = tuple(n for n in spec.region_list if n not in masks and n != "box_from_mask")
    return DatasetRegions(spec.region_list, masks, boxes, spec.box_from_mask)


def ordered_regions(available, regions: DatasetRegions) -> list[str]:
    """``available`` region names in the dataset's order (names not in its list last, sorted)."""
    avail = set(available)
    return [n for n in regions.all if n in avail] + sorted(avail - set(regions.all))


def default_region(available, regions: DatasetRegions) -> str | None:
    """The region a page opens on: the dataset's first mask region that has scores, else its first
    region with scores, else any."""
    avail = ordered_regions(available, regions)
    return next((n for n in regions.masks if n in avail), avail[0] if avail else None)


def region_pairs(available, regions: DatasetRegions) -> list[tuple[str, str]]:
    """(mask region, box region) pairs to compare: each mask region with the box derived from it
    (``box_from_mask``) and with every given box region, whatever their names; only pairs with
    scores on both sides."""
    avail = set(available)
    pairs = []
    for m in regions.masks:
        if m not in avail:
            continue
        if regions.box_from_mask == m and "box_from_mask" in avail:
            pairs.append((m, "box_from_mask"))
        pairs += [(m, b) for b in regions.boxes if b in avail]
    return pairs
