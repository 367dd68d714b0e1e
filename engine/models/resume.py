"""Per-epoch training state, so an interrupted fine-tuning run resumes from its last finished epoch.

After every epoch :func:`save_state` writes the weights, the optimizer's state (AdamW moments and
step counts), the data / augmentation generator's state and torch's global generator state, the
history, the best epoch's weights and monitor value and the patience counter to a temporary file,
then renames it over the state file (a crash mid-write leaves the previous epoch's state).
:func:`load_state` restores them -- only for the same :class:`~.train.TrainConfig` -- with
``torch.load(weights_only=True)``; plain values travel as JSON text.  On CPU a resumed run ends with
the same weights as an uninterrupted one.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def _config_text(cfg) -> str:
    return json.dumps(asdict(cfg), sort_keys=True, default=str)


def save_state(path: str | Path, cfg, model: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
               epoch: int, step: int, history: list[dict], best_state: dict | None, best_value, best: dict | None,
               stale: int) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"config": _config_text(cfg), "epoch": int(epoch), "step": int(step), "stale": int(stale),
            "plain": json.dumps({"history": history, "best": best, "best_value": best_value}),
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "best_state": {k: v.detach().cpu() for k, v in best_state.items()} if best_state is not None else {},
            "has_best": best_state is not None, "opt": opt.state_dict(), "gen": gen.get_state(),
            "torch_rng": torch.get_rng_state()}
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_state(path: str | Path, cfg, model: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
               device) -> tuple | None:
    """Restore ``model``, ``opt`` and ``gen`` from ``path``; returns (next epoch, step, history, best
    state, best value, best record, stale) or None when there is no usable state for this config."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("config") != _config_text(cfg):
            log.info("%s: saved for another training config; starting afresh", path)
            return None
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["opt"])
        gen.set_state(blob["gen"])
        torch.set_rng_state(blob["torch_rng"])
    except Exception as exc:  # a damaged or foreign file: train from the start rather than fail
        log.warning("%s: cannot resume from it (%s); starting afresh", path, str(exc).splitlines()[0])
        return None
    model.to(device)
    plain = json.loads(blob["plain"])
    best_state = blob["best_state"] if blob["has_best"] else None
    return (blob["epoch"] + 1, blob["step"], plain["history"], best_state, plain["best_value"], plain["best"],
            blob["stale"])
