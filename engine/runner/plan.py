"""``run --dry-run``: the job grid of an experiment against a database, without doing the work.

For every (dataset, model): whether training is needed, and how many predict / evaluate / sanity
jobs are already done or would run, with the work they stand for (maps to compute, model forwards
of the faithfulness curves).  Generated demo datasets are written if missing (their fingerprints
key the jobs); nothing is trained, explained or written to the database.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from ..metrics import METRICS
from ..metrics.road import curve_forwards
from ..models.given import describe_source
from ..store.read import done_job_keys
from . import units
from .datasets import prepare
from .experiment import Experiment
from .jobs import checkpoint_path, plan_chunks, predict_key, train_key
from .validate import uses_hub


def job_grid(exp: Experiment, db: Path, work_dir: str | Path | None = None,
             stopped: list | None = None, prepared: list | None = None) -> pd.DataFrame:
    """The job grid; with ``stopped``, a dataset that cannot be listed is left out and ``(name, error)``
    appended (as the run stops it), else it raises.  ``prepared``: the datasets as the run's validation
    prepared them (else they are prepared here)."""
    work = Path(work_dir) if work_dir else exp.resolve(exp.work_dir)
    ckpt_dir = (work / exp.checkpoints).resolve()
    done = done_job_keys(db)
    prec = exp.resolved_precision()
    rows = []
    for d in prepared if prepared is not None else prepare(exp, work, progress=False, failed=stopped):
        for e in exp.model_entries(d.block):
            variants = exp.method_variants(e)
            n_eval = len(variants) * len(exp.metrics)
            key = train_key(d.fingerprint, e, exp.seed, prec)
            res = units.reuse_checkpoint(str(checkpoint_path(ckpt_dir, e, key)), repair=False)
            row = {"dataset": d.spec.name, "model": e.key, "images scored": len(d.scored),
                   "train": "done" if res else ("load" if e.as_given else "run" if e.init == "trained" else "build")}
            if res is None:
                pending, n_done, pred = n_eval, 0, "run"
                pending_variants = set(range(len(variants)))
                faith = [k for _ in variants for k in exp.metrics if METRICS[k].kind == "faithfulness"]
            else:
                chunks, n_done = plan_chunks(d.fingerprint, res.sha256, variants, exp.metrics, exp.regions, done,
                                             prec)
                jobs = [j for c in chunks for j in c.jobs]
                pending = len(jobs)
                pred = "done" if predict_key(d.fingerprint, res.sha256, prec) in done else "run"
                pending_variants = {(j.method, str(j.method_params)) for j in jobs}
                faith = [j.metric for j in jobs if METRICS[j.metric].kind == "faithfulness"]
            steps = sum(curve_forwards(k, exp.metrics[k]) for k in faith)  # forwards per image and curve
            row.update({"predict": pred, "evaluate done": n_done, "evaluate to run": pending,
                        "maps to compute": len(pending_variants) * len(d.scored),
                        "curve forwards": steps * len(d.scored)})
            rows.append(row)
    return pd.DataFrame(rows)


def weights_sources(exp: Experiment) -> list[str]:
    """One line per model entry: where its weights come from and whether they are here."""
    out = []
    for e in exp.model_entries():
        if e.init == "random":
            where, state = "random init (no weights)", "present"
        elif e.pretrain:
            where, state = f"offline pretraining ({e.pretrain}, source {e.pretrain_source})", "present"
        else:
            where, state = describe_source(e.weights, uses_hub(e), e.name)
        mode = "as given" if e.as_given else ("untrained" if e.init == "random" else "fine-tuned here")
        out.append(f"  {e.key}: {where} -- {state}; {mode}")
    return out


def device_line(device: str) -> str:
    """The device a run would use, and whether this machine has it (a dry run plans either way)."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        return f"device {device!r}: absent on this machine (CUDA is not available); the plan below is what a " \
               f"machine with it would run"
    if device == "mps" and not torch.backends.mps.is_available():
        return f"device {device!r}: absent on this machine (MPS is not available); the plan below is what a " \
               f"machine with it would run"
    return f"device {device!r}: available"


def dry_run(exp: Experiment, db: Path, work_dir: str | Path | None = None, validated: tuple | None = None,
            device: str | None = None) -> int:
    """Print the device, each model's weights source and the job grid; ``validated``: what
    :func:`engine.runner.run.validate_run` returned (the datasets the run would run, and those it would stop)."""
    stopped: list = list(validated[1]) if validated else []
    grid = job_grid(exp, db, work_dir, stopped, prepared=validated[0] if validated else None)
    print(f"experiment {exp.name!r} against {db}:")
    print(device_line(device or exp.device))
    print("weights:")
    print("\n".join(weights_sources(exp)))
    for name, exc in stopped:
        print(f"dataset {name!r} would be stopped: {exc}")
    if grid.empty:
        print("no dataset can be run")
        return 1
    print(grid.to_string(index=False))
    todo = int((grid["evaluate to run"] > 0).sum() + (grid["train"] != "done").sum())
    print("nothing to do: every job is in the database" if todo == 0 else
          f"{int(grid['evaluate to run'].sum())} evaluate jobs to run; "
          f"{int((grid['train'] == 'run').sum())} models to fine-tune, "
          f"{int((grid['train'] == 'load').sum())} to load as given")
    return 0
