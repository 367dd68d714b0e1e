"""Grid search of fine-tuning hyper-parameters on the validation split.

Every combination of the grid's values (e.g. ``{"lr": [...], "weight_decay": [...], "epochs": [...]}``;
any :class:`~.train.TrainConfig` field may be searched) is fine-tuned from the same seeded
initialisation.  The configuration with the highest validation balanced accuracy (at its best
epoch) wins; ties go to the lower validation loss, then to the earlier trial.  The winning model is
*kept* as trained in its trial (not retrained on train + val): its weights are the ones the trial
selected, so the reported validation numbers belong to the returned model.
"""
from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, fields, replace
from typing import Callable

import torch

from .factory import ModelInfo
from .train import TrainConfig, TrainResult, fine_tune

log = logging.getLogger(__name__)


@dataclass
class GridResult:
    model: torch.nn.Module  # the selected trial's model, best epoch, eval mode
    info: ModelInfo
    config: TrainConfig  # base with the selected parameters
    result: TrainResult  # the selected trial's training result
    trials: list[dict]  # one per combination, in grid order (see grid_search)

    @property
    def best(self) -> dict:
        return next(t for t in self.trials if t["selected"])


def expand_grid(grid: dict[str, list]) -> list[dict]:
    """Every combination, the first key varying slowest; values keep their given order."""
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(grid) - names)
    if unknown:
        raise ValueError(f"grid keys {unknown} are not TrainConfig fields ({sorted(names)})")
    empty = [k for k, v in grid.items() if len(v) == 0]
    if empty:
        raise ValueError(f"grid keys {empty} have no values")
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _rank_key(trial: dict) -> tuple:
    bacc, loss = trial["val_balanced_accuracy"], trial["val_loss"]
    return (-(bacc if not math.isnan(bacc) else -1.0), loss if not math.isnan(loss) else math.inf, trial["trial"])


def grid_search(build_model: Callable[[], tuple[torch.nn.Module, ModelInfo]], train_ds, val_ds, base: TrainConfig,
                grid: dict[str, list], device: str | torch.device = "cpu", progress: bool = True,
                precision: str | None = None, resume: str | None = None) -> GridResult:
    """Fine-tune ``build_model()`` once per combination of ``grid`` on ``base``; keep the best.

    ``build_model`` returns a fresh ``(model, info)``; it is called after ``torch.manual_seed(base.seed)``
    so every trial starts from the same weights.  Each trial dict has: ``trial`` (index), ``params``,
    ``best_epoch``, ``val_loss``, ``val_accuracy``, ``val_balanced_accuracy`` (all at the best epoch),
    ``selected``, ``seconds``, ``stopped_early`` and ``history`` (per-epoch curves).
    ``resume``: each trial keeps its per-epoch training state in ``<resume>.trial<i>`` (see fine_tune).
    """
    combos = expand_grid(grid)
    trials: list[dict] = []
    kept: tuple | None = None  # (rank key, model, info, cfg, result) of the best trial so far
    for i, params in enumerate(combos):
        cfg = replace(base, **params)
        torch.manual_seed(base.seed)
        model, info = build_model()
        t0 = time.perf_counter()
        log.info("grid trial %d/%d: %s", i + 1, len(combos), params)
        res = fine_tune(model, info, train_ds, val_ds, cfg, device=device, progress=progress, precision=precision,
                        resume=f"{resume}.trial{i}" if resume else None)
        trial = {"trial": i, "params": dict(params), "best_epoch": res.best_epoch, "val_loss": res.best_val_loss,
                 "val_accuracy": res.best_val_accuracy, "val_balanced_accuracy": res.best_val_balanced_accuracy,
                 "selected": False, "seconds": time.perf_counter() - t0, "stopped_early": res.stopped_early,
                 "history": res.history}
        trials.append(trial)
        key = _rank_key(trial)
        if kept is None or key < kept[0]:
            kept = (key, model, info, cfg, res)  # the previous best model is released here
        else:
            del model
        log.info("grid trial %d: val balanced acc %.3f, val loss %.4f", i, trial["val_balanced_accuracy"],
                 trial["val_loss"])
    _, model, info, cfg, res = kept
    trials[kept[0][2]]["selected"] = True
    return GridResult(model.eval(), info, cfg, res, trials)
