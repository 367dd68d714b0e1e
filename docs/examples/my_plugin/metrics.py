"""Precision of the top-k % pixels: a localisation metric from outside the package.

Rule: the share of the map's top-k % pixels that lie in the region,

    precision@k = |top_k(map) ∩ region| / |top_k(map)|

where top_k holds every pixel whose value is >= the value of the ceil(k/100 * H*W)-th largest pixel (ties at
the threshold are all included, so no pixel is chosen by its position).  Precision at a cut-off as in
retrieval; unlike IoU it does not penalise a top set smaller than the region, unlike relevance rank accuracy
(Arras et al., Information Fusion 2022) its cut-off is a fixed share of the image, not the region's size.
Empty region: NaN (not scored).  1 = every top pixel in the region; a random map scores the region's area
fraction on average.

Call contract (kind "localisation", see engine/metrics/registry.py): ``fn(maps, regions, **params)``, maps
float (B, H, W) at image resolution, regions bool (B, H, W); returns float64 (B,).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from engine.metrics import register_metric


@register_metric("precision_topk", version=1, kind="localisation", higher_is_better=True,
                 reference="share of the top-k % pixels inside the region (precision at a cut-off)")
def precision_topk(maps, regions, k: float = 10.0) -> np.ndarray:
    """Share of the map's top-``k`` % pixels (ties at the threshold included) inside the region; NaN for an
    empty region."""
    if not 0 < k <= 100:
        raise ValueError(f"k must be a percentage in (0, 100], got {k}")
    flat = torch.as_tensor(maps).double().flatten(1)
    reg = torch.as_tensor(regions).bool().flatten(1)
    n_top = max(1, math.ceil(k / 100.0 * flat.shape[1]))
    top = flat >= flat.topk(n_top, dim=1).values[:, -1:]
    out = ((top & reg).sum(1).double() / top.sum(1).double()).numpy().astype(np.float64)
    out[~reg.any(1).numpy()] = np.nan
    return out
