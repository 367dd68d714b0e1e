"""Localisation metrics: does a map point at the annotated region?

All take ``maps`` float (B, H, W) at image resolution and ``regions`` bool (B, H, W) and return
a float64 numpy array (B,), NaN where the score is undefined (an empty region is never scored).
A map containing NaN or inf is rejected with an error: a broken map must not become a score.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .registry import register_metric


def _check(maps: torch.Tensor, regions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    maps = torch.as_tensor(maps)
    regions = torch.as_tensor(regions)
    if maps.ndim != 3 or regions.shape != maps.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and regions {tuple(regions.shape)} must both be (B, H, W) "
                         f"of the same size (upsample maps first)")
    if not torch.isfinite(maps).all():
        bad = (~torch.isfinite(maps)).flatten(1).any(1).nonzero().flatten().tolist()
        raise ValueError(f"maps of batch items {bad} contain NaN or inf")
    return maps.double(), regions.bool()


@register_metric("pointing_game", version=1, kind="localisation",
                 reference="Zhang et al., ECCV 2016 (Top-down neural attention by excitation backprop)")
def pointing_game(maps, regions) -> np.ndarray:
    """Hit if the map's maximum lies in the region.

    Ties: when several pixels share the maximum, every one of them counts and the score is the
    fraction of them inside the region (1 or 0 for a unique maximum; a constant map scores the
    region's area fraction, i.e. chance, instead of an automatic hit).  Empty region: NaN.
    """
    maps, regions = _check(maps, regions)
    flat, reg = maps.flatten(1), regions.flatten(1)
    is_max = flat == flat.amax(dim=1, keepdim=True)
    hits = (is_max & reg).sum(1).double() / is_max.sum(1).double()
    out = hits.numpy().astype(np.float64)
    out[~reg.any(1).numpy()] = np.nan
    return out


def iou_topk(maps, regions, k: float = 5.0) -> np.ndarray:
    """IoU between the top-``k`` % pixels of the map and the region.

    The top set holds every pixel whose value is >= the value of the ceil(k/100 * H*W)-th largest
    pixel (ties at the threshold are all included, so no pixel is chosen by its position).
    Empty region: NaN.
    """
    if not 0 < k <= 100:
        raise ValueError(f"k must be a percentage in (0, 100], got {k}")
    maps, regions = _check(maps, regions)
    flat, reg = maps.flatten(1), regions.flatten(1)
    n_top = max(1, math.ceil(k / 100.0 * flat.shape[1]))
    thresh = flat.topk(n_top, dim=1).values[:, -1:]
    top = flat >= thresh
    inter = (top & reg).sum(1).double()
    union = (top | reg).sum(1).double()
    out = (inter / union).numpy().astype(np.float64)
    out[~reg.any(1).numpy()] = np.nan
    return out


@register_metric("iou_top5", version=1, kind="localisation",
                 reference="top-5 % IoU as in the first study; true IoU, not Quantus' TopKIntersection")
def iou_top5(maps, regions) -> np.ndarray:
    """:func:`iou_topk` with k = 5 %."""
    return iou_topk(maps, regions, k=5.0)
