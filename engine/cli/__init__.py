"""Command line: ``python -m engine {demo,run,serve,status,check-data,schedule,report,table,figure}``.

Heavy modules (torch, timm, the models, the runner) are imported inside the commands: ``run`` takes the
database's lock and installs its SIGTERM / Ctrl-C handlers first, so a second run on the same database is
refused at once and an interrupt at any point ends the run cleanly.  Bad input (an experiment or dataset
that cannot run as written) is one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from .. import PROJECT_ROOT
from ..store.read import DEFAULT_DB
from .checks import argument_problem
from .errors import fail
from .outcome import nothing_scored, own_progress
from .readings import add_reading_parsers, write_run_report
from .serve import add_serve_parser, start_dashboard, wait_dashboard
from .verify import add_verify_parser

log = logging.getLogger("engine")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


EXPERIMENTS = PROJECT_ROOT / "data" / "experiments"


def _progress(args) -> bool:
    """Progress bars on a terminal only (quiet in cron / CI logs)."""
    return not args.no_progress and sys.stderr.isatty()


def _counts(report) -> str:
    return (f"{report.done} jobs done, {report.skipped} already in the database, {report.failed_jobs} failed jobs, "
            f"{report.failed_items} failed items")


def cmd_run(args) -> int:
    """Lock the database, then import, validate (exit 2) and run; SIGTERM / Ctrl-C exit 143 / 130."""
    from ..runner.signals import Interrupted, install_signal_handlers, interrupt_signal
    from ..store.lock import RunLock, WriterBusy
    install_signal_handlers()
    lock = None
    try:
        if not args.dry_run:
            try:
                lock = RunLock(Path(args.db)).acquire(args.wait)
            except WriterBusy as exc:
                fail(exc)
                return 3
            except OSError as exc:
                fail(f"--db {args.db}: cannot create its lock file {exc.filename or ''} ({exc.strerror or exc})")
                return 2
        return _run_locked(args, lock)
    except Exception as exc:  # a signal that surfaced as another error (e.g. DuckDB's 'Query interrupted')
        signum = interrupt_signal(exc)
        if signum is None:
            raise
        print(f"interrupted by {signal.Signals(signum).name} ({type(exc).__name__}: {' '.join(str(exc).split())})",
              file=sys.stderr)
        return 128 + signum
    except Interrupted as exc:
        report = getattr(exc, "report", None)
        mine = own_progress(args.db)  # a signal that came after the run returned its report
        what = f"run {report.run_id} interrupted by {exc}: {_counts(report)}; marked 'interrupted' in {args.db}; " \
               f"the same command continues where it stopped" if report is not None and report.run_id else \
            f"run {mine['run_id']} interrupted by {exc}: {mine.get('jobs_done', 0)} jobs done; its results are in " \
            f"{args.db}; the same command continues where it stopped" if mine else \
            f"interrupted by {exc} before any work was recorded"
        print(what, file=sys.stderr)
        return 128 + exc.signum
    finally:
        if lock is not None:  # a run refused before it wrote the database leaves no lock file
            lock.release(remove=not Path(args.db).exists())


def _run_locked(args, lock) -> int:
    from ..runner.executors import ExecutorUnavailable
    from ..runner.experiment import ExperimentError, load_experiment
    from ..runner.run import BadInput, StrictDatasetError, run_experiment, validate_run
    from ..runner.runlog import run_log
    from ..store import DatabaseRefused
    try:
        exp = load_experiment(args.experiment)
    except ExperimentError as exc:
        fail(exc)
        return 2
    device = args.device or exp.device
    if device.startswith("cuda") and not args.dry_run:  # a dry run plans the work and says the device is absent
        import torch
        if not torch.cuda.is_available():
            fail(f"device {device!r} asked for (--device or the experiment's device), but CUDA is not available "
                 f"here")
            return 2
    from ..store import check_database
    try:  # a damaged, foreign, newer or too-old database: refused before any work (the writer reads it fully)
        check_database(Path(args.db), deep=False)
    except DatabaseRefused as exc:
        fail(exc)
        return 2
    if args.dry_run:  # validated as the run validates: it reports everything the run would refuse
        from ..data import DatasetError
        from ..runner.plan import dry_run
        work = Path(args.work_dir).resolve() if args.work_dir else exp.resolve(exp.work_dir)
        try:
            validated = validate_run(exp, work, False)
        except BadInput as exc:
            from ..runner.plan import weights_sources
            sources = weights_sources(exp)
            if any("MISSING" in line for line in sources):  # where each model's weights are, which are missing
                print("weights:\n" + "\n".join(sources))
            fail(f"{args.experiment}: the run would refuse it: {exc}")
            return 2
        try:
            return dry_run(exp, Path(args.db), work_dir=args.work_dir, validated=validated, device=device)
        except (DatasetError, ValueError, OSError) as exc:
            fail(f"{args.experiment}: {exc}")
            return 2
    t0, db = time.monotonic(), Path(args.db)
    dash, url = None, f"http://127.0.0.1:{args.port}"
    if getattr(args, "serve", False):  # the dashboard first: it fills in as the run commits
        db.parent.mkdir(parents=True, exist_ok=True)
        dash = start_dashboard(db, args.port)
        print(f"dashboard: {url} (database {db}); it shows the run's progress and fills in as results land",
              flush=True)
    work = Path(args.work_dir).resolve() if args.work_dir else exp.resolve(exp.work_dir)
    try:  # everything checked (datasets as check-data checks them) before the run log or the database
        prepared = validate_run(exp, work, _progress(args))
    except BadInput as exc:
        fail(f"{args.experiment}: {exc}")
        return _stop(dash, 2)
    try:
        with run_log(db, exp.name) as log_path:
            report = run_experiment(exp, args.db, executor=args.executor, ray_address=args.ray_address,
                                    work_dir=work, device=args.device, progress=_progress(args), lock=lock,
                                    prepared=prepared, precision=args.precision, threads=args.threads)
            if not getattr(args, "no_report", False):
                write_run_report(db, log_path)
    except DatabaseRefused as exc:  # damaged, foreign, newer or too old: refused before anything is written
        fail(exc)
        return _stop(dash, 2)
    except StrictDatasetError as exc:
        log.error("%s", exc)
        return _stop(dash, 1)
    except ExecutorUnavailable as exc:  # before any job: the run row (if any) says 'failed'
        fail(exc)
        return _stop(dash, 2)
    except BaseException:
        _stop(dash, 1)
        raise
    rc = 0 if report.ok else 1
    empty = nothing_scored(db, report.run_id)
    if empty:
        print(f"error: run {report.run_id} scored nothing: {empty}", file=sys.stderr)
        rc = 1
    if getattr(args, "summary", None):
        args.summary(db)
    print(end_summary(report, time.monotonic() - t0, db, url if dash else None))
    if dash is not None:
        return wait_dashboard(dash, url) or rc
    return rc


def _stop(dash: subprocess.Popen | None, rc: int) -> int:
    if dash is not None:
        dash.terminate()
    return rc


def end_summary(report, seconds: float, db: Path, url: str | None) -> str:
    """What a run prints at the end: jobs, failures, time, where to look."""
    from ..dashboard.hints import serve_command, status_command
    lines = [f"run {report.run_id}: {_counts(report)}, {seconds:.0f} s"]
    if not report.ok:
        lines.append(f"failures: `{status_command(db)}` or the dashboard's Runs page")
    lines.append(f"dashboard: {url}" if url else f"dashboard: `{serve_command(db)}` (serves this database, "
                 f"starts no work)")
    lines.append(f"report: `python -m engine report --db {db}` (each run also writes one beside its log)")
    return "\n".join(lines)


def _demo_models(db: Path) -> None:
    from ..dashboard import queries
    for m in queries.models(db).itertuples():
        acc = "–" if m.test_accuracy is None or m.test_accuracy != m.test_accuracy else f"{m.test_accuracy:.3f}"
        print(f"{m.model_id}  test accuracy {acc}")


def cmd_demo(args) -> int:
    name = "demo_quick.toml" if args.quick else "demo_full.toml" if args.full else "demo.toml"
    args.experiment = str(EXPERIMENTS / name)
    args.dry_run, args.executor, args.ray_address, args.wait = False, "local", None, 0.0
    args.work_dir = args.data_dir
    args.summary = _demo_models
    return cmd_run(args)


def cmd_check_data(args) -> int:
    """Dataset files are checked as they are; an experiment file's generated demo sets are written first."""
    import tomllib

    from ..data.check import check_data_command, report_datasets
    from ..data.files import parse_toml, special_file
    try:
        is_experiment = not special_file(args.config) and "models" in parse_toml(
            Path(args.config).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        is_experiment = False  # check_data_command reports the file's problem
    if not is_experiment:
        return check_data_command(args.config, fail_on=args.fail_on, splits_out=args.splits_out)
    from ..data import DatasetError
    from ..runner.datasets import spec_for
    from ..runner.experiment import ExperimentError, load_experiment
    try:
        exp = load_experiment(args.config)
        work = exp.resolve(exp.work_dir)
        specs = [spec_for(block, exp, work, exp.seed, progress=False) for block in exp.datasets]
    except (ExperimentError, DatasetError, ValueError, OSError) as exc:
        fail(exc if isinstance(exc, ExperimentError) else f"{args.config}: {exc}")
        return 2
    from ..runner.units import check_input_size
    errors = []  # a dataset's input_size that its models cannot take: the run would refuse it
    for block, spec in zip(exp.datasets, specs):
        for entry in exp.model_entries(block):
            try:
                check_input_size(spec, entry.name)
            except DatasetError as exc:
                errors.append(str(exc))
    return report_datasets(specs, args.fail_on, splits_out=args.splits_out, errors=list(dict.fromkeys(errors)))


def cmd_schedule(args) -> int:
    from ..runner.schedule import schedule_text
    print(schedule_text(Path(args.experiment), Path(args.db), args.every, systemd=args.systemd))
    return 0


def cmd_status(args) -> int:
    import duckdb

    from ..dashboard import queries
    from ..dashboard.status import status_text
    from ..store.check import database_problem, read_failure
    db = Path(args.db)
    problem = database_problem(db)   # damaged, foreign, newer: one sentence, no traceback
    if problem:
        fail(problem)
        return 2
    if not queries.database_exists(db):
        from ..dashboard.hints import fill_commands
        print(f"{db}: no results database here; a run creates it: {fill_commands(db)}")
        return 1
    try:
        print(status_text(db, full=args.all))
    except (duckdb.Error, OSError) as exc:   # a file damaged after the check
        fail(read_failure(db, exc))
        return 2
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (pinned memory on cuda)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default=None,
                   help="compute precision: bf16 autocast or fp32 (default: the experiment's, else bf16 on cuda, "
                        "fp32 on cpu); recorded with every model and score")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads per worker process (default: the experiment's, else cores // workers)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--serve", action="store_true", help="start the dashboard on http://127.0.0.1:PORT first; "
                   "it shows the run's progress and fills in as results land, and keeps serving afterwards")
    p.add_argument("--port", type=int, default=8501, help="dashboard port (default %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine",
                                description="Do the heatmaps of your vision transformers point where the disease is?")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="generate the demo data, fine-tune, explain, score, write the database")
    size = d.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small version for CI (fewer images and epochs)")
    size.add_argument("--full", action="store_true", help="the study-sized demo (data/experiments/demo_full.toml; "
                      "hours on a laptop CPU)")
    d.add_argument("--data-dir", default=None,
                   help="where demo images and checkpoints go (default: the project's data/)")
    _serve_args(d)
    _common(d)
    d.set_defaults(fn=cmd_demo)

    r = sub.add_parser("run", help="bring the database up to date with an experiment file (incremental)")
    r.add_argument("experiment", help="experiment TOML (see data/experiments/ and docs/running.md)")
    r.add_argument("--executor", choices=["local", "ray"], default="local")
    r.add_argument("--ray-address", default=None, help="join a Ray cluster ('auto' or ray://host:10001); "
                   "default: start a local Ray instance")
    r.add_argument("--dry-run", action="store_true", help="print the job grid (done / to run) and exit")
    r.add_argument("--work-dir", default=None, help="override the experiment's work_dir (generated data, "
                   "checkpoints)")
    r.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="if another run holds the database, wait this long before giving up (default: refuse)")
    _serve_args(r)
    _common(r)
    r.set_defaults(fn=cmd_run, device=None)

    c = sub.add_parser("check-data", help="validate the datasets of a TOML file and print a report")
    c.add_argument("config", help="experiment TOML with [[datasets]] blocks, or a file with one [dataset]")
    c.add_argument("--fail-on", choices=["warning", "error"], default="warning",
                   help="exit 1 on warnings and errors (default) or on errors only")
    c.add_argument("--splits-out", default=None, metavar="FILE.csv",
                   help="write image_id, label, group, split of each dataset (FILE_<name>.csv for several); "
                        "a spec reads such a file back with splits_csv = 'FILE.csv'")
    c.set_defaults(fn=cmd_check_data)

    sc = sub.add_parser("schedule", help="print a crontab line (or systemd units) that runs an experiment")
    sc.add_argument("experiment")
    sc.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    sc.add_argument("--every", default="daily", help="daily (02:00), hourly, or a cron expression")
    sc.add_argument("--systemd", action="store_true", help="print a systemd service + timer instead of cron")
    sc.add_argument("--print-cron", action="store_true", help="(default) print a crontab line")
    sc.set_defaults(fn=cmd_schedule)

    r.add_argument("--no-report", action="store_true", help="do not write the run's report next to its log")
    add_reading_parsers(sub)
    add_serve_parser(sub)
    add_verify_parser(sub)

    s = sub.add_parser("status", help="what is in the database")
    s.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    s.add_argument("--all", action="store_true", help="every run, model, score summary, MPRT row and failure")
    s.set_defaults(fn=cmd_status)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    problem = argument_problem(args)
    if problem:
        fail(problem)
        return 2
    if (getattr(args, "device", None) or "cpu").startswith("cuda") and args.command != "run":
        import torch
        if not torch.cuda.is_available():
            fail(f"--device {args.device} asked for, but CUDA is not available here")
            return 2
    return args.fn(args)
