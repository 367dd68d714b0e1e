"""Live progress of a run: one tqdm bar per stage on the terminal, and ``<db>.progress.json`` for readers.

The JSON file is the only thing the dashboard reads while a run is under way (the database itself
is published only at commits, and not at all before the first one).  It is written to a temporary
file and renamed over the old one, so a reader sees either the previous or the next state, takes no
lock and can never block the writer.  It holds the run id, the writer's pid and host, the stage,
jobs done / skipped / failed out of the planned total, the current dataset and model, start and
update times and, once the run ends, its final status; the run's plan (every stage in order, with what it
computes: methods and metrics), the index of the stage under way and the command line that continues the
run, so pages can say what is still to come and how to pick up an interrupted run.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..common.labels import method_label
from ..metrics import METRICS
from ..metrics.registry import METRIC_KINDS
from ..store.progress import progress_path, read_progress, training_text  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)


class _UnitProgress(logging.Handler):
    """Passes the ``unit_progress`` a training or pretraining log record carries (``extra=``: model, unit,
    k, n, loss) to the run's progress (in this process: the local executor's units)."""

    def __init__(self, progress: "RunProgress"):
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        info = getattr(record, "unit_progress", None)
        if isinstance(info, dict):
            self.progress.training(**info)


class RunProgress:
    """Counts jobs against the planned total, draws a bar per stage and keeps the progress file current.

    Every finished job is written at once (no throttling: a count never waits for the next job); the
    seconds between finished jobs are added up per job kind (``costs``: kind -> [seconds, jobs]), which
    the estimate of the time left is made from (:func:`engine.dashboard.live.remaining_estimate`); a job
    counts as many units as the images it works on (the plan's ``images``), so a dataset with fewer images
    is not estimated at a larger one's cost.
    Training and pretraining report ``epoch k of N`` / ``step k of N`` and the loss through their log
    records (``training``), shown on the bar and the Overview."""

    def __init__(self, db: str | Path, experiment: str, total: int, bars: bool = True, min_interval: float = 0.5,
                 publish_every: float = 0.0, plan: list[dict] | None = None, command: str | None = None):
        self.path = progress_path(db)
        self.bars, self.min_interval = bars, min_interval
        self.state = {"run_id": None, "experiment": experiment, "pid": os.getpid(), "host": platform.node(),
                      "status": "running", "stage": "starting", "dataset": None, "model": None,
                      "jobs_total": int(total), "jobs_done": 0, "jobs_skipped": 0, "jobs_failed": 0, "items_failed": 0,
                      "stage_done": 0, "stage_total": 0, "started": time.time(), "updated": time.time(),
                      "finished": None, "publish_every": float(publish_every), "plan": list(plan or []),
                      "stage_index": None, "command": command if command is not None else command_line(),
                      "costs": {}, "mark": time.time(), "training": None}
        self._bar: tqdm | None = None
        self._last_write = 0.0
        self._handler = _UnitProgress(self)
        logging.getLogger("engine").addHandler(self._handler)
        self.write(force=True)

    # -- what the driver calls -------------------------------------------------------------------
    def set_run(self, run_id: str) -> None:
        self.state["run_id"] = run_id
        self.write(force=True)

    def stage(self, name: str, total: int, dataset: str | None = None) -> None:
        """A new stage (e.g. ``demo_blood_smear: train``) with ``total`` jobs: a fresh bar."""
        self._close_bar()
        names = [s["name"] for s in self.state["plan"]]
        start = self.state["stage_index"] or 0
        index = names.index(name, start) if name in names[start:] else None
        self.state.update(stage=name, dataset=dataset, model=None, stage_done=0, stage_total=int(total),
                          stage_index=index, mark=time.time(), training=None)
        if self.bars:
            self._bar = tqdm(total=int(total), desc=name, unit="job", dynamic_ncols=True)
        self.write(force=True)

    def working_on(self, model: str | None) -> None:
        self.state["model"] = model
        self.write(force=True)

    def advance(self, done: int = 0, skipped: int = 0, failed: int = 0, method: str | None = None) -> None:
        """Jobs finished (done or failed: their time since the last finished job counts to the stage's job
        kind, and to ``kind:method`` for a method's job) or skipped (already in the database); written to
        the file at once."""
        self.state["jobs_done"] += done
        self.state["jobs_skipped"] += skipped
        self.state["jobs_failed"] += failed
        n = done + skipped + failed
        self.state["stage_done"] += n
        now = time.time()
        if done + failed:  # seconds per job-image of this kind (a job weighs the images it works on)
            spent, units = max(0.0, now - float(self.state["mark"])), (done + failed) * self.images()
            for key in (self.kind(), *([f"{self.kind()}:{method}"] if method else [])):
                cost = self.state["costs"].setdefault(key, [0.0, 0])
                cost[0] += spent
                cost[1] += units
            self.state["training"] = None
        self.state["mark"] = now
        if self._bar is not None and n:
            self._bar.update(n)
        self.write(force=bool(n))

    def training(self, model: str, unit: str, k: int, n: int, loss: float | None = None) -> None:
        """Training (``unit`` "epoch") or pretraining ("pretraining step") of ``model`` reached ``k`` of ``n``."""
        self.state["training"] = {"model": model, "unit": unit, "k": int(k), "n": int(n),
                                  "loss": None if loss is None else float(loss)}
        if self._bar is not None:
            self._bar.set_postfix_str(training_text(self.state["training"]))
        self.write(force=True)

    def images(self) -> int:
        """The images one job of the stage under way works on (its plan entry's ``images``; 1 unknown)."""
        index, plan = self.state.get("stage_index"), self.state.get("plan") or []
        return int(plan[index].get("images") or 1) if index is not None and index < len(plan) else 1

    def kind(self) -> str:
        """The job kind of the stage under way (from the plan, else the stage name's last part)."""
        index, plan = self.state.get("stage_index"), self.state.get("plan") or []
        if index is not None and index < len(plan):
            return plan[index]["kind"]
        last = str(self.state.get("stage") or "").rsplit(": ", 1)[-1]
        return next((k for k, t in STAGE_TITLES.items() if t == last), last)

    def finish(self, status: str) -> None:
        logging.getLogger("engine").removeHandler(self._handler)
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
STAGE_TITLES = {"sanity": "sanity (MPRT)"}


def stage_name(dataset: str, kind: str) -> str:
    """The name of one stage of one dataset block, as the bar, the log and the pages show it."""
    return f"{dataset}: {STAGE_TITLES.get(kind, kind)}"


def command_line(argv: list[str] | None = None) -> str | None:
    """The command that started this process, as a user would type it again (``python -m engine ...`` or the
    console script); None when the process is not the command line (a test, a notebook)."""
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return None
    first = Path(argv[0])
    if first.name == "__main__.py" and first.parent.name == "engine":
        return shlex.join(["python", "-m", "engine", *argv[1:]])
    if first.name == "vit-heatmap-check":
        return shlex.join([first.name, *argv[1:]])
    return None


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


def run_plan(exp, sizes: dict[str, tuple[int, int]] | None = None) -> list[dict]:
    """Every stage of the run in the order the driver runs them (per ``[[datasets]]`` block: data, train,
    predict, localisation, faithfulness, sanity): its name (:func:`stage_name`), dataset, kind, planned
    jobs, what it computes (method labels and metric names; MPRT: its methods) and ``images``, the images
    one of its jobs works on (``sizes``: dataset -> (images, scored images); training: all of the dataset's
    images, the other stages: the scored ones; 1 when unknown), which the estimate weighs its cost by."""
    out = []
    for block in exp.datasets:
        totals = {"data": 0, **stage_totals(exp, block)}
        labels = sorted({method_label(m, p) for e in exp.model_entries(block) for m, p in exp.method_variants(e)})
        for kind in ("data", *STAGES):
            if kind in METRIC_KINDS:  # localisation, faithfulness, class sensitivity
                methods, metrics = labels, [m for m in exp.metrics if METRICS[m].kind == kind]
            elif kind == "sanity":
                wanted = exp.sanity.methods
                methods, metrics = [m for m in labels if wanted is None or m.split(" (")[0] in wanted], []
            else:
                methods, metrics = [], []
            size = (sizes or {}).get(block["name"])
            images = max(int(size[0] if kind == "train" else size[1]), 1) if size else 1
            out.append({"name": stage_name(block["name"], kind), "dataset": block["name"], "kind": kind,
                        "total": int(totals[kind]), "methods": methods, "metrics": metrics, "images": images})
    return out


def planned_jobs(exp) -> int:
    """Every job of the experiment (done already or not)."""
    return sum(sum(stage_totals(exp, b).values()) for b in exp.datasets)
