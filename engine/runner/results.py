"""What the units of work return: small dataclasses, picklable (Ray ships them back from workers).

A unit never writes the database; the driver (:mod:`engine.runner.run`) writes these.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from ..models import ModelInfo


def first_line(exc: BaseException) -> str:
    """The one-line reason recorded for an exception: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


@dataclass(frozen=True)
class Failure:
    """One item that failed (``item`` '*' = the whole unit or method), at which stage and why (one line)."""
    item: str
    stage: str
    reason: str
    method: str | None = None


@dataclass
class TrainMeta:
    """What training recorded (also kept in the checkpoint's sidecar, so a re-used checkpoint has it)."""
    init: str                                   # 'trained' or 'random'
    strategy: str | None
    hparams: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)   # val_accuracy, best_epoch
    history: list = field(default_factory=list)

    @classmethod
    def from_sidecar(cls, side: dict) -> "TrainMeta":
        return cls(init=side.get("init"), strategy=side.get("strategy"), hparams=side.get("hparams") or {},
                   metrics=side.get("metrics") or {}, history=side.get("history") or [])

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """A built (and unless random, fine-tuned) model: its checkpoint and what training recorded."""
    checkpoint: str
    sha256: str
    info: ModelInfo
    meta: TrainMeta
    trials: list[dict] = field(default_factory=list)     # grid-search trials (engine.models.grid)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class PredictResult:
    """Class probabilities of the test split and the scored images; the test-split classification report
    (accuracy, balanced_accuracy, macro_f1, auroc, confusion, n; empty without test images)."""
    predictions: pd.DataFrame
    test: dict[str, Any] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)


@dataclass
class ChunkResult:
    """Maps, scores and curves of one chunk of evaluate jobs, on ``n_items`` images; its degenerate maps
    (``degenerate_maps`` rows but the ids) and the regions' centre coverage (``region_stats`` rows)."""
    explanations: pd.DataFrame
    scores: pd.DataFrame
    curves: pd.DataFrame
    failures: list[Failure] = field(default_factory=list)
    n_items: int = 0
    degenerate: pd.DataFrame | None = None
    region_stats: pd.DataFrame | None = None
    target_maps: pd.DataFrame | None = None     # true-class maps of misclassified images (role 'true')
    target_scores: pd.DataFrame | None = None   # and their localisation scores


@dataclass
class SanityResult:
    """MPRT rows of one model (``sanity`` table columns but the ids)."""
    sanity: pd.DataFrame
    failures: list[Failure] = field(default_factory=list)
