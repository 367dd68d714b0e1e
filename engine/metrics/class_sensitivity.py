"""Class sensitivity: the random-logit test (Sixt, Granz & Landgraf, ICML 2020, "When explanations lie: why
many modified BP attributions fail"; Quantus ``RandomLogit``).

A map that explains *the class* should change when another class is explained.  For every image the map
of the explained class (the predicted one) is compared with the map of the same method for another class:

* ``*_second``: the most likely class other than the explained one (the second most likely when the
  explained class is the predicted one), by the model's logits on the image;
* ``*_random``: a class drawn uniformly from the other classes by a generator seeded from a CRC32 of the
  image id started from ``seed``, so the draw does not depend on the batch (Quantus draws it from
  ``np.random`` per call).

Similarity, both on the maps' native grid (as MPRT, :mod:`engine.metrics.sanity`):

* ``class_ssim_*``: SSIM of the per-map min-max scaled maps (uniform 7 x 7 window, Wang et al. 2004
  constants for a data range of 1) -- :func:`engine.metrics.sanity.ssim`;
* ``class_spearman_*``: Spearman rank correlation of the raw values (NaN when either map is constant) --
  :func:`engine.metrics.sanity.spearman`.

Lower is better (``higher_is_better=False``): a class-agnostic method (CLS attention, rollout, both
baseline maps) scores exactly 1 (similarities are rounded to 12 decimals, so float rounding in SciPy's
Spearman cannot make an identical map differ from 1).  A low similarity alone does not make a map right
(a map of noise that changes with the class would pass): read it beside the localisation and faithfulness
scores.

Contract (kind ``class_sensitivity``): ``fn(maps, other_maps, **params)``, both (B, h, w), returns (B,)
float64.  The runner computes ``other_maps`` with :func:`other_targets` (:mod:`engine.runner.evaluate`); a
model with one output has no other class and is refused (:func:`other_targets`, and before any work by
the runner's dataset check).
"""
from __future__ import annotations

import zlib

import numpy as np
import torch

from .registry import register_metric
from .sanity import spearman, ssim

OTHER_CLASS = {"class_ssim_second": "second", "class_spearman_second": "second",
               "class_ssim_random": "random", "class_spearman_random": "random"}


def other_targets(logits: torch.Tensor, targets: torch.Tensor, image_ids: list[str], rule: str,
                  seed: int = 0) -> torch.Tensor:
    """The class each image's map is compared against (``rule``: 'second' or 'random')."""
    n_classes = int(logits.shape[1])
    if n_classes < 2:
        raise ValueError(f"class sensitivity needs a model with at least 2 outputs; this one has {n_classes}")
    targets = torch.as_tensor(targets).long().cpu()
    if rule == "second":
        masked = logits.detach().float().cpu().clone()
        masked[torch.arange(len(targets)), targets] = -torch.inf
        return masked.argmax(1)
    if rule == "random":
        out = []
        for image_id, t in zip(image_ids, targets.tolist()):
            rng = np.random.default_rng(zlib.crc32(str(image_id).encode(), seed & 0xFFFFFFFF))
            others = [c for c in range(n_classes) if c != t]
            out.append(others[int(rng.integers(len(others)))])
        return torch.tensor(out, dtype=torch.long)
    raise ValueError(f"other-class rule {rule!r}; allowed: 'second', 'random'")


def _pairs(maps, other_maps, fn) -> np.ndarray:
    a = torch.as_tensor(maps).detach().cpu().double().numpy()
    b = torch.as_tensor(other_maps).detach().cpu().double().numpy()
    if a.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"maps {a.shape} and other-class maps {b.shape} must both be (B, h, w)")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("maps contain NaN or inf")
    # rounded to 12 decimals: a class-agnostic map must score exactly 1, not 1 - 2e-16 (the paired tests of the
    # summaries would read a float-rounding difference to a baseline's 1 as a significant one)
    return np.round(np.array([fn(x, y) for x, y in zip(a, b)], dtype=np.float64), 12)


def _ssim(maps, other_maps) -> np.ndarray:
    return _pairs(maps, other_maps, ssim)


def _spearman(maps, other_maps) -> np.ndarray:
    return _pairs(maps, other_maps, spearman)


_REF = "Sixt et al., ICML 2020 (random-logit test; Quantus RandomLogit)"


@register_metric("class_ssim_second", version=1, kind="class_sensitivity", higher_is_better=False,
                 reference=_REF + ", SSIM, second most likely class")
def class_ssim_second(maps, other_maps) -> np.ndarray:
    """SSIM between the map of the explained class and that of the next most likely class."""
    return _ssim(maps, other_maps)


@register_metric("class_spearman_second", version=1, kind="class_sensitivity", higher_is_better=False,
                 reference=_REF + ", Spearman, second most likely class")
def class_spearman_second(maps, other_maps) -> np.ndarray:
    """Spearman correlation between the map of the explained class and that of the next most likely class."""
    return _spearman(maps, other_maps)


@register_metric("class_ssim_random", version=1, kind="class_sensitivity", higher_is_better=False,
                 reference=_REF + ", SSIM, seeded random other class")
def class_ssim_random(maps, other_maps, seed: int = 0) -> np.ndarray:
    """SSIM between the map of the explained class and that of a seeded random other class (``seed``
    is read by the runner, which draws the class)."""
    return _ssim(maps, other_maps)


@register_metric("class_spearman_random", version=1, kind="class_sensitivity", higher_is_better=False,
                 reference=_REF + ", Spearman, seeded random other class")
def class_spearman_random(maps, other_maps, seed: int = 0) -> np.ndarray:
    """Spearman correlation between the map of the explained class and that of a seeded random other class
    (``seed`` is read by the runner, which draws the class)."""
    return _spearman(maps, other_maps)
