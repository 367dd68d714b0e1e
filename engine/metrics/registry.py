"""Metric registry: ``METRICS[name]`` is a :class:`MetricInfo`, callable like the rule itself."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class MetricInfo:
    name: str
    fn: Callable[..., np.ndarray]
    version: int
    kind: str  # 'localisation' (maps + regions) or 'faithfulness' (maps + model)
    higher_is_better: bool
    reference: str

    def __call__(self, *args, **kwargs) -> np.ndarray:
        return self.fn(*args, **kwargs)


METRICS: dict[str, MetricInfo] = {}


def register_metric(name: str, *, version: int, kind: str, higher_is_better: bool = True, reference: str = ""):
    def deco(fn):
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = MetricInfo(name, fn, version, kind, higher_is_better, reference)
        return fn
    return deco
