"""Live progress of a run: one tqdm bar per stage on the terminal, and ``<db>.progress.json`` for readers.

The JSON file is the only thing the dashboard reads while a run is under way (the database itself
is published only at commits, and not at all before the first one).  It is written to a temporary
file and renamed over the old one, so a reader sees either the previous or the next state, takes no
lock and can never block the writer.  It holds the run id, the writer's pid and host, the stage,
jobs done / skipped / failed out of the planned total, the current dataset and model, start and
update times and, once the run ends, its final status.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path

from tqdm import tqdm

from ..metrics import METRICS
from ..metrics.registry import METRIC_KINDS
from ..store.progress import progress_path, read_progress  # noqa: F401  (re-exported for the runner's callers)

log = logging.getLogger(__name__)


class RunProgress:
    """Counts jobs against the planned total, draws a bar per stage and keeps the progress file current."""

    def __init__(self, db: str | Path, experiment: str, total: int, bars: bool = True, min_interval: float = 0.5,
                 publish_every: float = 0.0):
        self.path = progress_path(db)
        self.bars, self.min_interval = bars, min_interval
        self.state = {"run_id": None, "experiment": experiment, "pid": os.getpid(), "host": platform.node(),
                      "status": "running", "stage": "starting", "dataset": None, "model": None,
                      "jobs_total": int(total), "jobs_done": 0, "jobs_skipped": 0, "jobs_failed": 0, "items_failed": 0,
                      "stage_done": 0, "stage_total": 0, "started": time.time(), "updated": time.time(),
                      "finished": None, "publish_every": float(publish_every)}
        self._bar: tqdm | None = None
        self._last_write = 0.0
        self.write(force=True)

    # -- what the driver calls -------------------------------------------------------------------
    def set_run(self, run_id: str) -> None:
        self.state["run_id"] = run_id
        self.write(force=True)

    def stage(self, name: str, total: int, dataset: str | None = None) -> None:
        """A new stage (e.g. ``demo_blood_smear: train``) with ``total`` jobs: a fresh bar."""
        self._close_bar()
        self.state.update(stage=name, dataset=dataset, model=None, stage_done=0, stage_total=int(total))
        if self.bars:
            self._bar = tqdm(total=int(total), desc=name, unit="job", dynamic_ncols=True)
        self.write(force=True)

    def working_on(self, model: str | None) -> None:
        self.state["model"] = model
        self.write(force=True)

    def advance(self, done: int = 0, skipped: int = 0, failed: int = 0) -> None:
        self.state["jobs_done"] += done
        self.state["jobs_skipped"] += skipped
        self.state["jobs_failed"] += failed
        n = done + skipped + failed
        self.state["stage_done"] += n
        if self._bar is not None and n:
            self._bar.update(n)
        self.write()

    def finish(self, status: str) -> None:
        self._close_bar()
        self.state.update(status=status, stage="finished" if status.startswith("finished") else status,
                          model=None, finished=time.time())
        self.write(force=True)

    # -- file --------------------------------------------------------------------------------------
    def write(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_write < self.min_interval:
            return
        self.state["updated"] = now
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.state), encoding="utf-8")
            os.replace(tmp, self.path)
            self._last_write = now
        except OSError as exc:  # progress is a courtesy: never stop a run for it
            log.debug("could not write %s: %s", self.path, exc)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


STAGES = ("train", "predict", *METRIC_KINDS, "sanity")


def stage_totals(exp, block: dict) -> dict[str, int]:
    """Planned jobs of one ``[[datasets]]`` block per stage, in the order the driver runs them:
    every model trained and predicted, then every method scored by the metrics of each kind in turn
    (localisation, faithfulness, class sensitivity), then MPRT."""
    entries = exp.model_entries(block)
    kinds = [METRICS[m].kind for m in exp.metrics]
    n_variants = [len(exp.method_variants(e)) for e in entries]
    cfg = exp.sanity
    n_sanity = sum(1 for e in entries if cfg.images and (cfg.models == "all" or e.init == "trained"))
    return {"train": len(entries), "predict": len(entries),
            **{k: sum(n_variants) * kinds.count(k) for k in METRIC_KINDS}, "sanity": n_sanity}


def planned_jobs(exp) -> int:
    """Every job of the experiment (done already or not)."""
    return sum(sum(stage_totals(exp, b).values()) for b in exp.datasets)
