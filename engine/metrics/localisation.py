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


def dilate(regions: torch.Tensor, radius: float) -> torch.Tensor:
    """Pixels within Euclidean distance ``radius`` (pixel centres) of a region pixel."""
    r = int(math.floor(radius))
    if r <= 0:
        return regions
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    disk = ((yy ** 2 + xx ** 2) <= radius ** 2).double()[None, None]
    hit = torch.nn.functional.conv2d(regions.double()[:, None], disk, padding=r)[:, 0]
    return hit > 0.5


@register_metric("pointing_game", version=1, kind="localisation",
                 reference="Zhang et al., ECCV 2016 (Top-down neural attention by excitation backprop); "
                           "tolerance as in TorchRay")
def pointing_game(maps, regions, tolerance_px: float = 0.0) -> np.ndarray:
    """Hit if the map's maximum lies in the region.

    Ties: when several pixels share the maximum, every one of them counts and the score is the
    fraction of them inside the region (1 or 0 for a unique maximum; a constant map scores the
    region's area fraction, i.e. chance, instead of an automatic hit).  ``tolerance_px``: a maximal
    pixel also counts when a region pixel lies within that distance of it, closed disk (``<=``);
    TorchRay's integer tolerance ``t`` is an open disk (``<``), i.e. ours with ``sqrt(t**2 - 1)``
    (TorchRay's 15 px at 224 = ``tolerance_px=14.97``).  Empty region: NaN.
    """
    maps, regions = _check(maps, regions)
    empty = ~regions.flatten(1).any(1)
    regions = dilate(regions, tolerance_px)
    flat, reg = maps.flatten(1), regions.flatten(1)
    is_max = flat == flat.amax(dim=1, keepdim=True)
    hits = (is_max & reg).sum(1).double() / is_max.sum(1).double()
    out = hits.numpy().astype(np.float64)
    out[empty.numpy()] = np.nan
    return out


@register_metric("iou_topk", version=1, kind="localisation",
                 reference="IoU of the top-k % pixels with the region (k a parameter)")
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


def _mass_share(mass: torch.Tensor, regions: torch.Tensor) -> np.ndarray:
    """sum(mass in R) / sum(mass) per image for non-negative ``mass``; NaN for an empty region or
    zero total mass."""
    flat, reg = mass.flatten(1), regions.flatten(1)
    total = flat.sum(1)
    out = ((flat * reg).sum(1) / total.where(total > 0, torch.ones_like(total))).numpy()
    out[(total <= 0).numpy() | ~reg.any(1).numpy()] = np.nan
    return out.astype(np.float64)


@register_metric("energy_pg", version=1, kind="localisation",
                 reference="Wang et al., CVPR-W 2020 (Score-CAM), energy-based pointing game")
def energy_pg(maps, regions) -> np.ndarray:
    """Share of the map's positive mass inside the region: sum(max(m,0) in R) / sum(max(m,0)).
    NaN for an empty region or a map without positive mass."""
    maps, regions = _check(maps, regions)
    return _mass_share(maps.clamp(min=0), regions)


@register_metric("mass_accuracy", version=1, kind="localisation",
                 reference="Arras, Osman & Samek, Information Fusion 2022 (relevance mass accuracy); "
                           "equals Quantus RelevanceMassAccuracy with abs=True (Quantus' default is abs=False)")
def mass_accuracy(maps, regions) -> np.ndarray:
    """sum(|m| in R) / sum(|m|).  NaN for an empty region or an all-zero map."""
    maps, regions = _check(maps, regions)
    return _mass_share(maps.abs(), regions)


@register_metric("rank_accuracy", version=1, kind="localisation",
                 reference="Arras, Osman & Samek, Information Fusion 2022 (relevance rank accuracy)")
def rank_accuracy(maps, regions) -> np.ndarray:
    """Fraction of the K highest-ranked pixels that lie in the region, K = region size.

    Ties at the K-th value are counted by their expected share (each tied pixel counts
    ``slots / n_tied``), so no pixel is chosen by its position (Quantus takes argsort order).
    """
    maps, regions = _check(maps, regions)
    flat, reg = maps.flatten(1), regions.flatten(1)
    out = np.full(flat.shape[0], np.nan)
    for b in range(flat.shape[0]):
        k = int(reg[b].sum())
        if k == 0:
            continue
        t = flat[b].topk(k).values[-1]
        above, tied = flat[b] > t, flat[b] == t
        slots = k - int(above.sum())
        hits = float((above & reg[b]).sum()) + slots * float((tied & reg[b]).sum()) / float(tied.sum())
        out[b] = hits / k
    return out


@register_metric("auprc", version=1, kind="localisation",
                 reference="area under the precision-recall curve of the map as a pixel classifier "
                           "(average precision, as sklearn.metrics.average_precision_score)")
def auprc(maps, regions) -> np.ndarray:
    """Average precision: sum over distinct thresholds of (R_n - R_{n-1}) P_n.  Empty region: NaN."""
    maps, regions = _check(maps, regions)
    flat, reg = maps.flatten(1).numpy(), regions.flatten(1).numpy()
    out = np.full(flat.shape[0], np.nan)
    for b in range(flat.shape[0]):
        pos = reg[b].sum()
        if pos == 0:
            continue
        order = np.argsort(-flat[b], kind="stable")
        v, y = flat[b][order], reg[b][order].astype(np.float64)
        last = np.r_[np.nonzero(np.diff(v))[0], len(v) - 1]  # end of each group of tied values
        tp = np.cumsum(y)[last]
        precision = tp / (last + 1)
        recall = tp / pos
        out[b] = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return out
