"""Chance baselines registered as methods, so every leaderboard shows what chance looks like.

* ``baseline_random`` -- i.i.d. uniform noise on the token grid.  The generator is seeded from
  a CRC32 of the image's bytes started from ``seed``, so a map is reproducible and independent of the other
  images of its batch.
* ``baseline_centre`` -- an isotropic Gaussian centred on the token grid with standard deviation
  ``sigma`` x the grid size (the centre bias every natural-image localisation benchmark warns about).

Neither reads the model's outputs, so both are registered as float32 (``reduced_precision=False``).
"""
from __future__ import annotations

import zlib

import torch

from .registry import register_method
from .trace import token_grid


def _grid(model: torch.nn.Module, images: torch.Tensor) -> tuple[int, int]:
    """The model's token grid, or the pixel grid for a model without a patch embedding."""
    return token_grid(model, images) if hasattr(model, "patch_embed") else tuple(images.shape[-2:])


@register_method("baseline_random", version=1, needs_grads=False, kind="model", reduced_precision=False,
                 reference="uniform noise map (chance baseline)")
def baseline_random(model, images, targets, seed: int = 0) -> torch.Tensor:
    gh, gw = _grid(model, images)
    out = []
    for img in images:
        key = zlib.crc32(img.detach().cpu().contiguous().numpy().tobytes(), seed & 0xFFFFFFFF)
        g = torch.Generator().manual_seed(key)
        out.append(torch.rand(gh, gw, generator=g))
    return torch.stack(out).to(images.device)


@register_method("baseline_centre", version=1, needs_grads=False, kind="model", reduced_precision=False,
                 reference="centred Gaussian map (centre-bias baseline)")
def baseline_centre(model, images, targets, sigma: float = 0.25) -> torch.Tensor:
    gh, gw = _grid(model, images)
    ys = (torch.arange(gh, dtype=torch.float32) + 0.5) / gh - 0.5
    xs = (torch.arange(gw, dtype=torch.float32) + 0.5) / gw - 0.5
    g = torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma ** 2))
    return g.expand(images.shape[0], gh, gw).clone().to(images.device)
