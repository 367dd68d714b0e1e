"""One builder of an image's regions, for scoring and for display.

:func:`build_regions` turns a record's ground truth (:func:`engine.data.ground_truth.read_ground_truth`:
the union of every mask file a glob ``mask_template`` matched, value-coded mask regions, boxes, named
box regions) into boolean regions on the model's square input.  The loader
(:func:`engine.data.dataset.load_sample`) calls it for the run, and the dashboard re-loads the same
record (:func:`engine.dashboard.images.load_stored_sample`) through the same loader, so the pixels drawn are the
pixels scored.
"""
from __future__ import annotations

import torch

from .ground_truth import GroundTruth
from .transforms import box_from_mask, rasterise_boxes, transform_mask


def build_regions(gt: GroundTruth, spec, geo) -> dict[str, torch.Tensor]:
    """Regions ``name -> (S, S) bool`` of one image, in the order of ``spec.region_list``."""
    size = spec.input_size
    regions: dict[str, torch.Tensor] = {}
    for name, src in gt.masks.items():
        regions[name] = torch.from_numpy(transform_mask(src, geo))
        if spec.box_from_mask == name:
            regions["box_from_mask"] = torch.from_numpy(rasterise_boxes(geo.map_boxes(box_from_mask(src)), size))
    for name, boxes in gt.box_sets.items():
        regions[name] = torch.from_numpy(rasterise_boxes(geo.map_boxes(boxes), size))
    if gt.boxes is not None:
        regions["box"] = torch.from_numpy(rasterise_boxes(geo.map_boxes(gt.boxes), size))
    order = {n: k for k, n in enumerate(spec.region_list)}
    return dict(sorted(regions.items(), key=lambda kv: order.get(kv[0], len(order))))

