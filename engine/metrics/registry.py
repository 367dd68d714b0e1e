"""Metric registry: ``METRICS[name]`` is a :class:`MetricInfo`, callable like the rule itself.

The call contract, one per kind (this is its one statement; the docs point here).  It is checked when
the function is registered: a signature that does not fit is refused at import, in one line naming the
missing or extra parameter.

* ``kind="localisation"``: ``fn(maps, regions, **params) -> (B,)``: scores maps against a region.
  ``maps``: float ``(B, H, W)``, upsampled to the image size (:func:`engine.explain.upsample_maps`),
  never constant or non-finite (such maps are not scored); ``regions``: bool ``(B, H, W)``, one region
  (e.g. the nucleus mask or the union of boxes) per image, possibly empty.
* ``kind="faithfulness"``: ``fn(maps, *, model, images, targets, return_curves, precision, **params)``:
  perturbs the images along the map and asks the model.  ``model`` is in eval mode, ``images`` are the
  normalised ``(B, 3, H, W)``, ``targets`` the explained classes ``(B,)``, ``precision`` 'fp32' or 'bf16'
  (autocast for its forwards).  Returns ``(B,)``, or with ``return_curves=True`` (what the runner asks)
  ``(values (B,), xs (S,), ys (B, S))``, the curve of each image.
* ``kind="class_sensitivity"``: ``fn(maps, other_maps, **params) -> (B,)``: compares each map of the
  explained class with the same method's map for another class (the runner computes ``other_maps``: the
  second most likely class, or a seeded random other class; see :mod:`engine.metrics.class_sensitivity`).
  Both are raw ``(B, h, w)`` maps on the method's own grid.

``**params`` are keyword parameters, every one with a default: the experiment's ``[metrics]`` table sets
them by name.  Values are float64, one per image; NaN means *not scored* and is allowed only where the
image's region is empty (stored as NULL).  A result of another shape, inf, or (from a plugin) NaN where
there was something to score is a failure row, never a score.  ``higher_is_better`` orients the
leaderboard.

The model-randomisation sanity check (MPRT) checks methods, not maps: it is not registered here (see
:mod:`engine.metrics.sanity`).  A name is registered once; metrics registered from outside the package
(plugins: docs/plugins.md) cannot take a built-in's name, and their ``source`` (the sha256 of the module
file that registered them) enters the job keys.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, get_args

import numpy as np

from ..explain.registry import check_contract, check_name, is_builtin_module, source_sha256

MetricKind = Literal["localisation", "faithfulness", "class_sensitivity"]
METRIC_KINDS: tuple[str, ...] = get_args(MetricKind)
# (positional parameters, keyword parameters) of each kind's call contract
METRIC_CONTRACTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "localisation": (("maps", "regions"), ()),
    "faithfulness": (("maps",), ("model", "images", "targets", "return_curves", "precision")),
    "class_sensitivity": (("maps", "other_maps"), ()),
}


@dataclass(frozen=True)
class MetricInfo:
    name: str
    fn: Callable[..., np.ndarray]
    version: int
    kind: MetricKind  # 'localisation' (maps + regions), 'faithfulness' (maps + model), 'class_sensitivity'
    higher_is_better: bool
    reference: str
    module: str = ""  # the module that registered it
    source: str | None = None  # plugins: sha256 of that module's file (None: built-in, keyed by version alone)

    @property
    def builtin(self) -> bool:
        return is_builtin_module(self.module)

    def __call__(self, *args, **kwargs) -> np.ndarray:
        return self.fn(*args, **kwargs)


METRICS: dict[str, MetricInfo] = {}


def register_metric(name: str, *, version: int, kind: MetricKind, higher_is_better: bool = True,
                    reference: str = ""):
    """Register ``fn`` as metric ``name`` (the call contract of each kind: this module's docstring)."""
    if kind not in METRIC_KINDS:
        raise ValueError(f"metric {name!r}: kind {kind!r}; allowed: {list(METRIC_KINDS)}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"metric {name!r}: version = {version!r} must be an integer >= 1")

    def deco(fn):
        check_name("metric", name, METRICS, fn)
        check_contract(f"metric {name!r} (kind {kind!r})", fn, *METRIC_CONTRACTS[kind])
        module = getattr(fn, "__module__", "") or ""
        METRICS[name] = MetricInfo(name, fn, version, kind, higher_is_better, reference, module,
                                   None if is_builtin_module(module) else source_sha256(fn))
        return fn
    return deco
