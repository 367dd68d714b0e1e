"""The driver of ``python -m engine run EXPERIMENT.toml``: plan, skip what is done, execute, commit.

Stages per (dataset, model): train -> predict -> evaluate chunks -> sanity.  Only the driver writes,
through the :class:`~engine.store.ResultWriter`; every finished unit is written together with its
``jobs`` rows and published atomically (``commit``), so ``kill -9`` at any moment loses at most
the unit in flight and a rerun of the same command picks up exactly where it stopped.  A failing
item (bad image, NaN map, out of memory on a batch) or a failing unit is recorded in ``failures``
and the run goes on; the exit status says whether anything failed.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..data import DatasetError
from ..metrics import METRICS
from ..metrics.registry import METRIC_KINDS
from ..store import ResultWriter, canonical_json, identity, utc_now
from ..store.lock import RunLock
from . import units
from .datasets import PreparedDataset, prepare
from .executors import make_executor
from .experiment import Experiment, ModelEntry
from .ingest import finish_run, refresh_quality, refresh_summaries, start_run, write_dataset, write_model
from .jobs import Chunk, checkpoint_path, method_key, metric_key, plan_chunks, predict_key, sanity_key, train_key
from .plan_checks import check_prepared
from .plugins import registered_plugins
from .progress import RunProgress, planned_jobs, run_plan, stage_totals
from .results import ChunkResult, Failure, TrainResult, first_line
from .signals import SIGNALS, Interrupted, interrupt_signal, signals_deferred
from .validate import check_weights, preflight

log = logging.getLogger(__name__)


class StrictDatasetError(RuntimeError):
    """A bad item in a dataset marked ``strict = true``: the run stops (after recording it)."""


@dataclass
class RunReport:
    run_id: str | None = None
    done: int = 0
    skipped: int = 0
    failed_jobs: int = 0
    failed_items: int = 0
    models: dict = field(default_factory=dict)   # model_id -> {init, test metrics}
    datasets: list = field(default_factory=list)
    status: str = "running"
    db_publishes: int = 0       # atomic publishes of the database (engine/store/writer.py)
    db_written: int = 0         # bytes the writer wrote (shard files and catalogs), copies and merges included
    db_size: int = 0            # bytes of the published database at the end

    @property
    def ok(self) -> bool:
        return self.failed_jobs == 0 and self.failed_items == 0


class _Driver:
    def __init__(self, exp: Experiment, w: ResultWriter, executor, work_dir: Path, device: str, progress: bool,
                 precision: str = "fp32", live: RunProgress | None = None):
        self.exp, self.w, self.ex, self.device, self.progress = exp, w, executor, device, progress
        self.precision = precision
        self.live = live
        self.ckpt_dir = (work_dir / exp.checkpoints).resolve()
        self.report = RunReport()
        self.done = w.done_job_keys()
        self.strict_ids: set[str] = set()  # datasets with strict = true
        self.blocks: dict[str, dict] = {}  # dataset id -> its [[datasets]] block

    # -- bookkeeping ---------------------------------------------------------------------------
    def _job(self, key: str, kind: str, started: dt.datetime, *, status: str = "done", dataset_id: str | None = None,
             model_id: str | None = None, method: tuple | None = None, metrics: dict | None = None,
             n_items: int = 0, n_failed: int = 0) -> None:
        mkey = method or (None, None, None)
        self.w.upsert("jobs", {"job_key": key, "run_id": self.report.run_id, "experiment": self.exp.name,
                               "kind": kind, "dataset_id": dataset_id, "model_id": model_id, "method": mkey[0],
                               "method_version": mkey[1], "method_params": mkey[2],
                               "metrics": metrics or {}, "status": status, "n_items": n_items,
                               "n_failed": n_failed, "started_at": started, "finished_at": utc_now(),
                               "seconds": (utc_now() - started).total_seconds()})
        if status == "done":
            self.report.done += 1
        else:
            self.report.failed_jobs += 1
        if self.live is not None:
            self.live.advance(done=int(status == "done"), failed=int(status != "done"), method=mkey[0])

    def _row_ids(self, d: PreparedDataset, model_id: str) -> dict[str, str]:
        """The ids a unit writes into every row it returns (given when the unit is made)."""
        return {"run_id": self.report.run_id, "dataset_id": d.dataset_id, "model_id": model_id}

    def _skip(self, n: int = 1) -> None:
        self.report.skipped += n
        if self.live is not None and n:
            self.live.advance(skipped=n)

    def _failures(self, key: str, failures: list[Failure], dataset_id: str | None = None,
                  model_id: str | None = None, count: bool = True) -> None:
        self.w.clear_failures(key)  # a rerun replaces old reasons
        if not failures:
            return
        df = pd.DataFrame([{"run_id": self.report.run_id, "job_key": key, "dataset_id": dataset_id,
                            "model_id": model_id, "method": f.method, "item": f.item, "stage": f.stage,
                            "reason": f.reason, "failed_at": utc_now()} for f in failures])
        self.w.replace_rows("failures", df.drop_duplicates(["job_key", "item", "stage", "method"]))
        if count:
            self.report.failed_items += len(df)
            if self.live is not None:
                self.live.state["items_failed"] = self.report.failed_items

    def _unit_failed(self, key, kind, started, exc, dataset_id=None, model_id=None, method=None):
        """Record a failed unit and go on -- unless it is a bad image of a ``strict = true`` dataset."""
        reason = first_line(exc)
        log.error("%s job %s failed: %s", kind, key, reason)
        self._failures(key, [Failure("*", kind, reason, method[0] if method else None)], dataset_id, model_id,
                       count=False)  # counted as a failed job, not an item
        self._job(key, kind, started, status="failed", dataset_id=dataset_id, model_id=model_id, method=method)
        self.w.commit()
        if isinstance(exc, DatasetError) and dataset_id in self.strict_ids:
            raise StrictDatasetError(f"{reason} (strict = true: run stopped; fix the file or set strict = false)")

    # -- stages --------------------------------------------------------------------------------
    def dataset(self, d: PreparedDataset) -> None:
        if d.spec.strict:
            self.strict_ids.add(d.dataset_id)
        self.blocks[d.dataset_id] = d.block
        write_dataset(self.w, d.spec, d.records, d.classes, d.fingerprint)
        self.report.datasets.append(d.dataset_id)
        self.w.commit()

    def train(self, d: PreparedDataset) -> list[tuple[ModelEntry, TrainResult, str]]:
        """Train (or re-use) every model of the experiment on ``d``; returns (entry, result, model_id).

        A checkpoint already in the checkpoint folder under the same train key is re-used even by a
        new database (the key covers everything that determines the weights)."""
        entries = self.exp.model_entries(self.blocks[d.dataset_id])
        keys = [train_key(d.fingerprint, e, self.exp.seed, self.precision) for e in entries]
        paths = [str(checkpoint_path(self.ckpt_dir, e, k)) for e, k in zip(entries, keys)]
        results: list = [units.reuse_checkpoint(p) for p in paths]
        out: dict[int, tuple] = {}
        for i, res in enumerate(results):
            if res is None:
                continue
            log.info("re-using checkpoint %s", res.checkpoint)
            if keys[i] in self.done:
                self._skip()
                out[i] = (entries[i], res, _model_id(entries[i], res))
            else:  # cached by an earlier run into another database
                out[i] = (entries[i], res, self._finish_train(d, entries[i], keys[i], res, utc_now()))
        todo = [i for i, r in enumerate(results) if r is None]
        calls = [dict(spec_json=d.spec_json, entry=entries[i], seed=self.exp.seed, ckpt_path=paths[i],
                      device=self.device, progress=self.progress, precision=self.precision) for i in todo]
        started = utc_now()
        if todo and self.live is not None:
            self.live.working_on(entries[todo[0]].key)
        for j, res, exc in self.ex.map(units.train_unit, calls):
            i = todo[j]
            if self.live is not None and j + 1 < len(todo):
                self.live.working_on(entries[todo[j + 1]].key)
            if exc is not None:
                self._unit_failed(keys[i], "train", started, exc, d.dataset_id)
            else:
                out[i] = (entries[i], res, self._finish_train(d, entries[i], keys[i], res, started))
            started = utc_now()
        return [out[i] for i in sorted(out)]

    def _finish_train(self, d: PreparedDataset, entry: ModelEntry, key: str, res: TrainResult,
                      started: dt.datetime) -> str:
        model_id = self._write_model(d, entry, res)
        self.w.replace_rows("trials", _trials(res.trials, d.dataset_id, entry, key, self.report.run_id))
        self._failures(key, res.failures, d.dataset_id, model_id)
        self._job(key, "train", started, dataset_id=d.dataset_id, model_id=model_id, n_failed=len(res.failures))
        self.w.commit()
        return model_id

    def _write_model(self, d: PreparedDataset, entry: ModelEntry, res: TrainResult, test: dict | None = None) -> str:
        test = test or {}
        return write_model(self.w, dataset_id=d.dataset_id, info=res.info, init=_init(entry, res),
                           checkpoint=res.checkpoint, sha256=res.sha256,
                           val_accuracy=res.meta.metrics.get("val_accuracy"), test_accuracy=test.get("accuracy"),
                           hparams=res.meta.hparams, history=res.meta.history,
                           label=entry.label, arch=res.info.arch, strategy=res.meta.strategy, test=test,
                           precision=self.precision)

    def predict(self, d: PreparedDataset, entry: ModelEntry, res: TrainResult, model_id: str) -> None:
        key = predict_key(d.fingerprint, res.sha256, self.precision)
        if key in self.done:
            self._skip()
            return
        if self.live is not None:
            self.live.working_on(model_id)
        started = utc_now()
        call = dict(spec_json=d.spec_json, ckpt=res.checkpoint, sha256=res.sha256, ids=d.scored,
                    device=self.device, batch_size=self.exp.batch_size, precision=self.precision,
                    **self._row_ids(d, model_id))
        for _, out, exc in self.ex.map(units.predict_unit, [call]):
            if exc is not None:
                self._unit_failed(key, "predict", started, exc, d.dataset_id, model_id)
                return
            preds = out.predictions
            self.w.replace_rows("predictions", preds)
            self._write_model(d, entry, res, out.test)
            self._failures(key, out.failures, d.dataset_id, model_id)
            self._job(key, "predict", started, dataset_id=d.dataset_id, model_id=model_id,
                      n_items=len(preds), n_failed=len(out.failures))
            self.report.models[model_id] = {"init": res.meta.init, **out.test}
            self.w.commit()

    def evaluate(self, d: PreparedDataset, model_id: str, entry: ModelEntry, res: TrainResult,
                 kind: str | None = None) -> None:
        """The evaluate jobs of one model; ``kind``: only the metrics of that kind (localisation /
        faithfulness), so the cheap localisation scores of every model land before the curves."""
        metrics = {k: v for k, v in self.exp.metrics.items() if kind is None or METRICS[k].kind == kind}
        if not metrics:
            return
        variants = self.exp.method_variants(entry)
        chunks, skipped = plan_chunks(d.fingerprint, res.sha256, variants, metrics, self.exp.regions, self.done,
                                      self.precision)
        self._skip(skipped)
        if chunks and self.live is not None:
            self.live.working_on(model_id)
        calls = [dict(spec_json=d.spec_json, ckpt=res.checkpoint, sha256=res.sha256, ids=d.scored, chunk=c,
                      metrics=metrics, regions=self.exp.regions, device=self.device,
                      batch_size=self.exp.batch_size, progress=self.progress, precision=self.precision,
                      **self._row_ids(d, model_id))
                 for c in chunks]
        started = utc_now()
        for i, out, exc in self.ex.map(units.chunk_unit, calls):
            self._write_chunk(d, model_id, chunks[i], out, exc, started)
            started = utc_now()
        # the paired tests (Holm over every method) once per model and pass, not after every chunk; also when
        # a run stopped between its last chunk and this point
        if chunks or (len(variants) > 1 and not self.w.has_pairwise(d.dataset_id, model_id, list(metrics))):
            _, n_pairs = refresh_summaries(self.w, d.dataset_id, model_id, seed=self.exp.seed, methods=set(),
                                           pairwise_metrics=set(metrics))
            self.w.commit()
            log.info("%s %s: %d paired tests (%s)", d.spec.name, model_id, n_pairs, ", ".join(metrics))

    def _write_chunk(self, d: PreparedDataset, model_id: str, chunk: Chunk, out: ChunkResult | None,
                     exc: BaseException | None, started: dt.datetime) -> None:
        if exc is not None:
            for j in chunk.jobs:
                self._unit_failed(j.key, "evaluate", started, exc, d.dataset_id, model_id,
                                  method_key(j.method, j.method_params))
            return
        for table, rows in (("explanations", out.explanations), ("scores", out.scores), ("curves", out.curves),
                            ("degenerate_maps", out.degenerate), ("target_maps", out.target_maps),
                            ("target_scores", out.target_scores)):
            if rows is not None:
                self.w.replace_rows(table, rows)
        if out.region_stats is not None:
            self.w.replace_rows("region_stats", out.region_stats)
        for j in chunk.jobs:  # a metric's failures go to its own job, the map's to the method's first job
            first = j is _first_job_of(chunk, j.method, j.method_params)
            mine = [f for f in out.failures if f.method == j.method
                    and (f.reason.startswith(f"{j.metric}: ") if f.stage == "score" else first)]
            self._failures(j.key, mine, d.dataset_id, model_id)
            self._job(j.key, "evaluate", started, dataset_id=d.dataset_id, model_id=model_id,
                      method=method_key(j.method, j.method_params),
                      metrics={j.metric: {"version": metric_key(j.metric, j.metric_params)[1],
                                          "params": j.metric_params}},
                      n_items=out.n_items, n_failed=len({f.item for f in mine}))
        refresh_summaries(self.w, d.dataset_id, model_id, seed=self.exp.seed, pairwise_metrics=set(),
                          methods={(j.method, canonical_json(j.method_params)) for j in chunk.jobs})
        self.w.commit()
        log.info("%s %s: %s done (%d jobs)", d.spec.name, model_id, chunk.name, len(chunk.jobs))

    def sanity(self, d: PreparedDataset, model_id: str, entry: ModelEntry, res: TrainResult) -> None:
        cfg = self.exp.sanity
        if cfg.images == 0 or (cfg.models == "trained" and entry.init != "trained"):
            return
        variants = [(n, p) for n, p in self.exp.method_variants(entry) if not cfg.methods or n in cfg.methods]
        variants = list({n: (n, p) for n, p in reversed(variants)}.values())[::-1]  # first variant per method
        ids = tuple(r.image_id for r in d.records if r.image_id in set(d.scored))[:cfg.images]
        key = sanity_key(d.fingerprint, res.sha256, [method_key(n, p) for n, p in variants], len(ids),
                         self.exp.seed, self.precision)
        if key in self.done:
            self._skip()
            return
        if self.live is not None:
            self.live.working_on(model_id)
        started = utc_now()
        call = dict(spec_json=d.spec_json, ckpt=res.checkpoint, sha256=res.sha256, ids=ids, variants=variants,
                    seed=self.exp.seed, device=self.device, precision=self.precision, **self._row_ids(d, model_id))
        for _, out, exc in self.ex.map(units.sanity_unit, [call]):
            if exc is not None:
                self._unit_failed(key, "sanity", started, exc, d.dataset_id, model_id)
                return
            self.w.replace_rows("sanity", out.sanity)
            self._failures(key, out.failures, d.dataset_id, model_id)
            self._job(key, "sanity", started, dataset_id=d.dataset_id, model_id=model_id, n_items=len(ids),
                      n_failed=len(out.failures))
            self.w.commit()


def _init(entry: ModelEntry, res: TrainResult) -> str:
    """The models row's ``init``: '<pretraining>-ft' for a fine-tuned pretrained backbone, else the train meta's."""
    return f"{entry.pretrain}-ft" if entry.pretrain and entry.init == "trained" else res.meta.init


def _model_id(entry: ModelEntry, res: TrainResult) -> str:
    return identity.model_id(res.info.name, _init(entry, res), res.sha256, entry.label)


def _first_job_of(chunk: Chunk, method: str, params: dict):
    return next(j for j in chunk.jobs if j.method == method and j.method_params == params)


def _trials(trials: list[dict], dataset_id: str, entry: ModelEntry, key: str, run_id: str) -> pd.DataFrame:
    cols = ["dataset_id", "model_name", "strategy", "search_key", "trial", "params", "best_epoch", "val_loss",
            "val_accuracy", "val_balanced_accuracy", "selected", "seconds", "history", "run_id"]
    rows = [{"dataset_id": dataset_id, "model_name": entry.name, "strategy": entry.pretrain or "none",
             "search_key": key, "trial": i, "params": canonical_json(t.get("params")),
             "best_epoch": t.get("best_epoch"), "val_loss": t.get("val_loss"), "val_accuracy": t.get("val_accuracy"),
             "val_balanced_accuracy": t.get("val_balanced_accuracy"), "selected": bool(t.get("selected")),
             "seconds": t.get("seconds"), "history": canonical_json(t.get("history")), "run_id": run_id}
            for i, t in enumerate(trials)]
    return pd.DataFrame(rows, columns=cols)


class BadInput(ValueError):
    """The experiment cannot run as written (a dataset, a folder, a weights file): nothing was done yet."""


def validate_run(exp: Experiment, work: Path, progress: bool = False) -> tuple[list[PreparedDataset], list]:
    """Everything checked before any work, as check-data checks it: the folders, models and weights
    (:func:`~engine.runner.validate.preflight`), then every dataset loaded (generated first) with a
    sample of its images read.  Returns (prepared datasets, stopped ones: (name, error)); a dataset that
    cannot be listed is stopped while another one can run, and is bad input when none can.  Raises
    :class:`BadInput` with one line naming the file and the key."""
    stopped: list = []

    def check(out):
        check_prepared(exp, out)  # splits, annotations, input sizes
        check_weights(exp, out)  # another architecture's state dict; an as-given head of the wrong size
    try:
        preflight(exp, work)
        prepared = prepare(exp, work, progress, failed=stopped, check=check)
    except (DatasetError, ValueError, OSError) as exc:
        raise BadInput(" ".join(str(exc).split())) from None
    if not prepared and stopped:
        raise BadInput(" ".join(str(stopped[0][1]).split()))
    return prepared, stopped


def run_experiment(exp: Experiment, db: str | Path, *, executor: str = "local", ray_address: str | None = None,
                   work_dir: str | Path | None = None, device: str | None = None, progress: bool = True,
                   lock_timeout: float = 0.0, precision: str | None = None, threads: int | None = None,
                   lock: RunLock | None = None, prepared: tuple | None = None) -> RunReport:
    """Bring ``db`` up to date with ``exp``; returns what was done, skipped and failed.

    ``precision`` / ``threads``: the CLI's; they win over the experiment file's (see
    :mod:`engine.common.precision` for the defaults).  ``lock``: the database's run lock, already held by
    the caller (the CLI takes it before importing torch); without it the lock is taken here, waiting up to
    ``lock_timeout`` seconds.  Bad input raises :class:`BadInput` before the database is touched
    (``prepared``: what :func:`validate_run` returned, when the caller validated already).  An interrupt
    (SIGTERM, Ctrl-C: a ``KeyboardInterrupt``) marks the run ``interrupted`` with its counts, removes the
    staging copy and re-raises with ``report`` attached.

    Datasets run one after another in file order; per dataset every model is trained and predicted, then
    scored by the localisation metrics, then by the faithfulness metrics, then sanity-checked, so the first
    dataset's localisation results are in the database early.  Progress goes to ``<db>.progress.json``
    (and a bar per stage when ``progress``)."""
    t0 = time.monotonic()
    work = Path(work_dir) if work_dir else exp.resolve(exp.work_dir)
    device = device or exp.device
    precision = exp.resolved_precision(device, precision)
    threads = threads or exp.threads
    own = lock is None or not lock.held
    lock = RunLock(db).acquire(lock_timeout) if own else lock
    try:
        prepared, stopped = validate_run(exp, work, progress) if prepared is None else prepared
        report = _run(exp, db, prepared, stopped, work, executor, ray_address, device, progress, lock, precision,
                      threads)
    finally:
        if own:
            lock.release()
    log.info("run %s %s in %.0f s: %d jobs done, %d skipped (already in the database), %d failed jobs, "
             "%d failed items", report.run_id, report.status, time.monotonic() - t0, report.done,
             report.skipped, report.failed_jobs, report.failed_items)
    log.info("database: %d publishes wrote %.1f MB for a database of %.1f MB (%.2fx)", report.db_publishes,
             report.db_written / 1e6, report.db_size / 1e6, report.db_written / max(report.db_size, 1))
    return report


def _run(exp, db, prepared, stopped, work, executor, ray_address, device, progress, lock, precision,
         threads) -> RunReport:
    holder: list[RunReport] = []
    try:
        return _run_in(exp, db, prepared, stopped, work, executor, ray_address, device, progress, lock, precision,
                       threads, holder)
    except Interrupted as exc:  # a second signal while the first was handled: still report the run's counts
        if getattr(exc, "report", None) is None and holder:
            exc.report = holder[0]
        raise


def _run_in(exp, db, prepared, stopped, work, executor, ray_address, device, progress, lock, precision,
            threads, holder: list) -> RunReport:
    with ResultWriter(db, lock=lock, publish_every=exp.publish_every, guard=SIGNALS) as w:
        live = RunProgress(db, exp.name, planned_jobs(exp), bars=progress, publish_every=exp.publish_every,
                           plan=run_plan(exp, {d.spec.name: (len(d.records), len(d.scored)) for d in prepared}))
        ex = make_executor(executor, ray_address, device, threads, plugins=tuple(exp.plugin_modules()))
        drv = _Driver(exp, w, ex, work, device, progress, precision, live)
        holder.append(drv.report)
        drv.report.run_id = start_run(w, "run", {"experiment": exp.model_dump(), "executor": executor,
                                                 "device": device, "precision": precision,
                                                 "threads": ex.threads, "db": str(db),
                                                 "plugins": registered_plugins()})
        w.own_runs.add(drv.report.run_id)
        w.commit(now=True)  # the run is visible as 'running' from its start
        live.set_run(drv.report.run_id)
        status = "failed"
        try:
            by_name = {d.spec.name: d for d in prepared}
            for name, exc in stopped:  # recorded as a failed job, with the reason; its jobs leave the plan
                drv._unit_failed(f"dataset:{name}", "dataset", utc_now(), exc)
            for block in exp.datasets:
                if block["name"] in by_name:
                    _run_dataset(drv, live, by_name[block["name"]], block)
                else:
                    live.state["jobs_total"] -= sum(stage_totals(exp, block).values())
            status = "finished" if drv.report.ok else "finished with failures"
        except BaseException as exc:  # an error, or SIGTERM / Ctrl-C (Interrupted), however it surfaced
            if interrupt_signal(exc) is not None:
                status = "interrupted"  # even if a second signal cuts what follows short
            with signals_deferred():
                if w.in_unit:  # a unit's rows were being written: drop them (units finished since the last
                    w.close(commit=False)  # publish go with them, and are redone by the next run)
                    w.open()
                    for k, v in w.run_counts(drv.report.run_id).items():  # report what the database holds
                        setattr(drv.report, k, v)
            signum = interrupt_signal(exc)
            if signum is None:
                raise
            status = "interrupted"
            err = exc if isinstance(exc, Interrupted) else Interrupted(signum)
            err.report = drv.report
            if err is exc:
                raise
            raise err from exc
        finally:
            drv.report.status = status
            with signals_deferred():
                ex.close()
                r = drv.report
                finish_run(w, r.run_id, status, {"done": r.done, "skipped": r.skipped, "failed_jobs": r.failed_jobs,
                                                 "failed_items": r.failed_items})
                w.close(commit=True)  # the run's row is published whatever ended it
                r.db_publishes, r.db_written, r.db_size = w.publishes, w.bytes_written, w.size()
            live.finish(status)
    return drv.report


def _run_dataset(drv: _Driver, live: RunProgress, d: PreparedDataset, block: dict) -> None:
    name, totals = d.spec.name, stage_totals(drv.exp, block)
    live.stage(f"{name}: data", 0, name)
    drv.dataset(d)
    live.stage(f"{name}: train", totals["train"], name)
    trained = drv.train(d)
    lost = [e for e in drv.exp.model_entries(block) if e.key not in {t[0].key for t in trained}]
    if lost:  # a model that failed to train has no later jobs: take them out of the plan
        live.state["jobs_total"] -= sum(_later_jobs(drv.exp, e) for e in lost)
    live.stage(f"{name}: predict", len(trained), name)
    for entry, res, model_id in trained:
        drv.predict(d, entry, res, model_id)
    refresh_quality(drv.w, d.dataset_id, seed=drv.exp.seed)
    drv.w.commit()
    for kind in METRIC_KINDS:
        live.stage(f"{name}: {kind}", totals[kind] - sum(_later_jobs(drv.exp, e, kind) for e in lost), name)
        for entry, res, model_id in trained:
            drv.evaluate(d, model_id, entry, res, kind)
    live.stage(f"{name}: sanity (MPRT)", totals["sanity"] - sum(_later_jobs(drv.exp, e, "sanity") for e in lost),
               name)
    for entry, res, model_id in trained:
        drv.sanity(d, model_id, entry, res)


def _later_jobs(exp: Experiment, entry: dict, stage: str | None = None) -> int:
    """The jobs after training of one model entry (of one stage: predict, a metric kind, sanity)."""
    n_var = len(exp.method_variants(entry))
    cfg = exp.sanity
    per = {"predict": 1, "sanity": int(bool(cfg.images) and (cfg.models == "all" or entry.init == "trained"))}
    for kind in METRIC_KINDS:
        per[kind] = n_var * sum(1 for m in exp.metrics if METRICS[m].kind == kind)
    return per[stage] if stage else sum(per.values())
