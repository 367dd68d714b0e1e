"""Upsampling of token-grid maps to image resolution, shared by metrics and the dashboard.

Bilinear interpolation with ``align_corners=False``: token ``(i, j)`` is treated as the value at
the centre of its patch, the convention of ``torch.nn.functional.interpolate`` and of the Chefer
and pytorch-grad-cam reference code.  Values are interpolated as they are (no rescaling).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def upsample_maps(maps: torch.Tensor, size: tuple[int, int] | int) -> torch.Tensor:
    """(B, gh, gw) -> (B, H, W) float32, bilinear, align_corners=False."""
    if isinstance(size, int):
        size = (size, size)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (B, gh, gw), got shape {tuple(maps.shape)}")
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps.float()
    return F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]
