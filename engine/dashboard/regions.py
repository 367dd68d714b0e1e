"""The dataset's own region names, for the dashboard's pickers, outlines and comparisons.

Region names are the dataset's (``lesion``, ``nucleus``, ``wbc``, ...), written with the dataset at ingest
from its spec (:attr:`engine.data.DatasetSpec.region_list`) and read back by :func:`stored_regions`, never
assumed to be ``mask`` / ``box``.
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


def stored_regions(row: dict | None) -> DatasetRegions:
    """The regions of a ``datasets`` row (a dict of its columns), as ingest wrote them (columns ``regions``,
    ``mask_regions``, ``box_regions``, ``box_from_mask``, since schema version 8): the one place the dashboard
    and the CLI get a dataset's regions from.  A row written before version 8 has them NULL (or lacks them):
    its regions are then read from its stored ``spec`` with the rule ingest applies, and are none (every
    list empty: names shown sorted) if that spec cannot be read by this version."""
    row = row or {}
    if _present(row.get("regions")):
        return DatasetRegions(*(tuple(row[c]) if _present(row.get(c)) else () for c in ("regions", "mask_regions",
                                                                                           "box_regions")),
                              row["box_from_mask"] if _present(row.get("box_from_mask")) else None)
    try:
        d = row.get("spec")
        spec = DatasetSpec(**(json.loads(d) if isinstance(d, str) else dict(d or {})))
    except (TypeError, ValueError):
        return DatasetRegions()
    return DatasetRegions(spec.region_list, spec.mask_region_list, spec.box_region_list, spec.box_from_mask)


def _present(v) -> bool:
    """A stored value, not SQL NULL (None, or NaN in a pandas row)."""
    return v is not None and not (isinstance(v, float) and v != v)


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
