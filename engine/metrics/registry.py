"""Metric registry: ``METRICS[name]`` is a :class:`MetricInfo`, callable like the rule itself.

Three call contracts, told apart by the checked ``kind``: 'localisation' ``fn(maps, regions, **params)``
scores maps against a region mask; 'faithfulness' ``fn(maps, model=, images=, targets=, **params)`` perturbs
the images along the map and asks the model; 'class_sensitivity' ``fn(maps, other_maps, **params)`` compares
the map of the explained class with the same method's map for another class (the runner computes it).
The model-randomisation sanity check (MPRT) checks methods,
not maps: it is not registered here (see :mod:`engine.metrics.sanity`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, get_args

import numpy as np

MetricKind = Literal["localisation", "faithfulness", "class_sensitivity"]
METRIC_KINDS: tuple[str, ...] = get_args(MetricKind)


@dataclass(frozen=True)
class MetricInfo:
    name: str
    fn: Callable[..., np.ndarray]
    version: int
    kind: MetricKind  # 'localisation' (maps + regions), 'faithfulness' (maps + model), 'class_sensitivity'
    higher_is_better: bool
    reference: str

    def __call__(self, *args, **kwargs) -> np.ndarray:
        return self.fn(*args, **kwargs)


METRICS: dict[str, MetricInfo] = {}


def register_metric(name: str, *, version: int, kind: MetricKind, higher_is_better: bool = True,
                    reference: str = ""):
    if kind not in METRIC_KINDS:
        raise ValueError(f"metric {name!r}: kind {kind!r}; allowed: {list(METRIC_KINDS)}")

    def deco(fn):
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = MetricInfo(name, fn, version, kind, higher_is_better, reference)
        return fn
    return deco
