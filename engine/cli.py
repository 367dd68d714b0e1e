"""Command line: ``python -m engine {demo,run,status,check-data,schedule,report,table,figure}``.

Heavy modules (torch, timm, the models, the runner) are imported inside the commands: ``run`` takes the
database's lock and installs its SIGTERM / Ctrl-C handlers first, so a second run on the same database is
refused at once and an interrupt at any point ends the run cleanly.  Bad input (an experiment or dataset
that cannot run as written) is one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import PROJECT_ROOT
from .store.read import DEFAULT_DB

log = logging.getLogger("engine")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def serve(db: Path, port: int = 8501) -> int:
    """Run the dashboard on 127.0.0.1 pointed at ``db`` (blocks until interrupted)."""
    env = {**os.environ, "XAI_DB": str(db.resolve())}
    cmd = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app.py"), "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    log.info("dashboard on http://127.0.0.1:%d (database %s); Ctrl+C stops it", port, db)
    try:
        return subprocess.call(cmd, env=env, cwd=PROJECT_ROOT)
    except KeyboardInterrupt:
        return 0


EXPERIMENTS = PROJECT_ROOT / "data" / "experiments"


def _progress(args) -> bool:
    """Progress bars on a terminal only (quiet in cron / CI logs)."""
    return not args.no_progress and sys.stderr.isatty()


def fail(message) -> None:
    """Bad input: one line on stderr (the caller returns 2)."""
    print("error: " + " ".join(str(message).split()), file=sys.stderr)


def _counts(report) -> str:
    return (f"{report.done} jobs done, {report.skipped} already in the database, {report.failed_jobs} failed jobs, "
            f"{report.failed_items} failed items")


def cmd_run(args) -> int:
    """Lock the database, then import, validate (exit 2) and run; SIGTERM / Ctrl-C exit 143 / 130."""
    from .store.lock import Interrupted, RunLock, WriterBusy, install_signal_handlers, interrupt_signal
    install_signal_handlers()
    lock = None
    try:
        if not args.dry_run:
            try:
                lock = RunLock(Path(args.db)).acquire(args.wait)
            except WriterBusy as exc:
                fail(exc)
                return 3
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
        what = f"run {report.run_id} interrupted by {exc}: {_counts(report)}; marked 'interrupted' in {args.db}; " \
               f"the same command continues where it stopped" if report is not None and report.run_id else \
            f"interrupted by {exc} before any work was recorded"
        print(what, file=sys.stderr)
        return 128 + exc.signum
    finally:
        if lock is not None:
            lock.release()


def _run_locked(args, lock) -> int:
    from .runner.experiment import ExperimentError, load_experiment
    from .runner.run import BadInput, StrictDatasetError, run_experiment, validate_run
    from .runner.runlog import run_log
    from .store import DatabaseRefused
    try:
        exp = load_experiment(args.experiment)
    except ExperimentError as exc:
        fail(exc)
        return 2
    device = args.device or exp.device
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            fail(f"device {device!r} asked for (--device or the experiment's device), but CUDA is not available "
                 f"here")
            return 2
    from .store import check_database
    try:  # a damaged, foreign, newer or too-old database: refused before any work (the writer reads it fully)
        check_database(Path(args.db), deep=False)
    except DatabaseRefused as exc:
        fail(exc)
        return 2
    if args.dry_run:
        from .data import DatasetError
        from .runner.plan import dry_run
        try:
            return dry_run(exp, Path(args.db), work_dir=args.work_dir)
        except (DatasetError, ValueError, OSError) as exc:
            fail(f"{args.experiment}: {exc}")
            return 2
    work = Path(args.work_dir).resolve() if args.work_dir else exp.resolve(exp.work_dir)
    try:  # everything checked (datasets as check-data checks them) before the run log or the database
        prepared = validate_run(exp, work, _progress(args))
    except BadInput as exc:
        fail(f"{args.experiment}: {exc}")
        return 2
    try:
        with run_log(Path(args.db), exp.name) as log_path:
            report = run_experiment(exp, args.db, executor=args.executor, ray_address=args.ray_address,
                                    work_dir=work, device=args.device, progress=_progress(args), lock=lock,
                                    prepared=prepared, precision=args.precision, threads=args.threads)
            if not getattr(args, "no_report", False):
                write_run_report(Path(args.db), log_path)
    except DatabaseRefused as exc:  # damaged, foreign, newer or too old: refused before anything is written
        fail(exc)
        return 2
    except StrictDatasetError as exc:
        log.error("%s", exc)
        return 1
    print(f"run {report.run_id}: {_counts(report)}"
          + ("" if report.ok else f" (see `python -m engine status --db {args.db}`)"))
    return 0 if report.ok else 1


def write_run_report(db: Path, log_path: Path) -> Path | None:
    """The run's report (Markdown) next to its log; a failure to write it is logged, never fatal."""
    from .dashboard.report import build_report
    out = log_path.with_suffix(".report.md")
    try:
        out.write_text(build_report(db), encoding="utf-8")
    except Exception as exc:  # the run's results are published already; the report is a reading of them
        log.error("could not write the run report %s: %s", out, exc)
        return None
    log.info("report written to %s", out)
    return out


def cmd_report(args) -> int:
    from .dashboard.report import build_report
    try:
        text = build_report(Path(args.db), args.dataset, args.format)
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"report written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _dataset_id(db: Path, dataset: str) -> str | None:
    from .dashboard import queries
    ds = queries.datasets(db)
    hit = ds[(ds.name == dataset) | (ds.dataset_id == dataset)].sort_values("dataset_id")
    return None if hit.empty else str(hit.dataset_id.iloc[-1])


def cmd_table(args) -> int:
    from .dashboard import queries
    from .dashboard.export import paper_table, to_csv, to_latex
    db = Path(args.db)
    if not queries.database_exists(db):
        log.error("%s: no results database here", db)
        return 2
    dataset_id = _dataset_id(db, args.dataset)
    if dataset_id is None:
        log.error("%s: no dataset %r", db, args.dataset)
        return 2
    board = queries.leaderboard(db, dataset_id, args.metric, args.region)
    if board.empty:
        log.error("%s: no scores of %s on region %s in dataset %s", db, args.metric, args.region, args.dataset)
        return 2
    table = paper_table(board)
    data = to_csv(table) if args.format == "csv" else to_latex(
        table, args.metric, args.region, bool(board.higher_is_better.iloc[0])).encode("utf-8")
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"table written to {args.out}")
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


def cmd_figure(args) -> int:
    from .dashboard import queries
    from .dashboard.figure import figure_panels, method_titles, render_png, render_svg
    from .dashboard.images import UnsafePath
    db = Path(args.db)
    if not queries.database_exists(db):
        log.error("%s: no results database here", db)
        return 2
    dataset_id = _dataset_id(db, args.dataset)
    if dataset_id is None:
        log.error("%s: no dataset %r", db, args.dataset)
        return 2
    methods = [(m, "{}") for m in args.methods.split(",") if m]
    ids = [i for i in (args.images or "").split(",") if i]
    if not ids:
        g = queries.gallery(db, dataset_id, args.model, methods[0][0], limit=args.n, method_params=methods[0][1])
        ids = list(g.image_id)
    try:
        panels = figure_panels(db, dataset_id, args.model, ids, methods, args.metric, args.region)
    except (UnsafePath, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    titles = method_titles(methods)
    out = Path(args.out)
    out.with_suffix(".png").write_bytes(render_png(panels, titles, args.alpha, args.cmap))
    out.with_suffix(".svg").write_text(render_svg(panels, titles, args.alpha, args.cmap), encoding="utf-8")
    print(f"figure written to {out.with_suffix('.png')} and {out.with_suffix('.svg')} "
          f"({len(panels)} images x {len(titles)} methods)")
    return 0


def cmd_demo(args) -> int:
    args.experiment = str(EXPERIMENTS / ("demo_quick.toml" if args.quick else "demo.toml"))
    args.dry_run, args.executor, args.ray_address, args.wait = False, "local", None, 0.0
    args.work_dir = args.data_dir
    t0 = time.monotonic()
    rc = cmd_run(args)
    if rc not in (0, 1):
        return rc
    log.info("demo finished in %.0f s; results in %s", time.monotonic() - t0, args.db)
    from .dashboard import queries
    for m in queries.models(Path(args.db)).itertuples():
        print(f"{m.model_id}  test accuracy {m.test_accuracy:.3f}")
    print(queries.method_summary(Path(args.db)).to_string(index=False))
    if args.serve:
        return serve(Path(args.db), args.port)
    return rc


def cmd_check_data(args) -> int:
    """Dataset files are checked as they are; an experiment file's generated demo sets are written first."""
    import tomllib

    from .data.check import check_data_command, report_datasets
    try:
        is_experiment = "models" in tomllib.loads(Path(args.config).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        is_experiment = False  # check_data_command reports the file's problem
    if not is_experiment:
        return check_data_command(args.config, fail_on=args.fail_on, splits_out=args.splits_out)
    from .data import DatasetError
    from .runner.datasets import spec_for
    from .runner.experiment import ExperimentError, load_experiment
    try:
        exp = load_experiment(args.config)
        work = exp.resolve(exp.work_dir)
        specs = [spec_for(block, exp, work, exp.seed, progress=False) for block in exp.datasets]
    except (ExperimentError, DatasetError, ValueError, OSError) as exc:
        fail(exc if isinstance(exc, ExperimentError) else f"{args.config}: {exc}")
        return 2
    from .runner.units import check_input_size
    errors = []  # a dataset's input_size that its models cannot take: the run would refuse it
    for block, spec in zip(exp.datasets, specs):
        for entry in exp.model_entries(block):
            try:
                check_input_size(spec, entry.name)
            except DatasetError as exc:
                errors.append(str(exc))
    return report_datasets(specs, args.fail_on, splits_out=args.splits_out, errors=list(dict.fromkeys(errors)))


def cmd_schedule(args) -> int:
    from .runner.schedule import schedule_text
    print(schedule_text(Path(args.experiment), Path(args.db), args.every, systemd=args.systemd))
    return 0


def cmd_status(args) -> int:
    from .dashboard import queries, queries_compare
    db = Path(args.db)
    if not queries.database_exists(db):
        print(f"{db}: no results database here; create one with `python -m engine demo --db {db}`")
        return 1
    print(f"database {db}")
    print(queries.table_counts(db).to_string(index=False))
    for title, df in (("runs", queries.runs(db)), ("datasets", queries.datasets(db)),
                      ("models", queries.models(db)), ("scores", queries.method_summary(db)),
                      ("sanity (MPRT, after full randomisation)", queries.sanity_summary(db)),
                      ("failures (latest first)", queries_compare.failures(db, limit=50))):
        print(f"\n{title}:")
        print(df.to_string(index=False) if len(df) else "  (none)")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine",
                                description="Do the heatmaps of your vision transformers point where the disease is?")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="generate the demo data, fine-tune, explain, score, write the database")
    d.add_argument("--quick", action="store_true", help="small version for CI (fewer images and epochs)")
    d.add_argument("--serve", action="store_true", help="then serve the dashboard on http://127.0.0.1:8501")
    d.add_argument("--data-dir", default=None,
                   help="where demo images and checkpoints go (default: the project's data/)")
    d.add_argument("--port", type=int, default=8501)
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

    rp = sub.add_parser("report", help="a report of the database: model quality, leaderboards with both "
                        "baselines, sanity checks, failures, and every guard's flag")
    rp.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    rp.add_argument("--dataset", default=None, help="one dataset (name or id); default: all")
    rp.add_argument("--format", choices=["md", "html"], default="md")
    rp.add_argument("--out", default=None, help="write here instead of standard output")
    rp.set_defaults(fn=cmd_report)

    t = sub.add_parser("table", help="the leaderboard of one metric and region as CSV or LaTeX (booktabs)")
    t.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    t.add_argument("--dataset", required=True, help="dataset name or id")
    t.add_argument("--metric", default="pointing_game")
    t.add_argument("--region", default="mask")
    t.add_argument("--format", choices=["csv", "latex"], default="latex")
    t.add_argument("--out", default=None, help="write here instead of standard output")
    t.set_defaults(fn=cmd_table)

    f = sub.add_parser("figure", help="N images x M methods (image, outline, heatmap, score) as PNG and SVG")
    f.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    f.add_argument("--dataset", required=True, help="dataset name or id")
    f.add_argument("--model", required=True, help="model id")
    f.add_argument("--methods", required=True, help="comma-separated method names (default parameters)")
    f.add_argument("--images", default=None, help="comma-separated image ids (default: the first --n)")
    f.add_argument("--n", type=int, default=4, help="images when --images is not given (default %(default)s)")
    f.add_argument("--metric", default="pointing_game", help="score shown under each map")
    f.add_argument("--region", default="mask", help="region of that score ('none' for faithfulness)")
    f.add_argument("--cmap", default="inferno", choices=["inferno", "viridis", "gray"])
    f.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity")
    f.add_argument("--out", default="figure", help="output stem: writes STEM.png and STEM.svg")
    f.set_defaults(fn=cmd_figure)

    s = sub.add_parser("status", help="what is in the database")
    s.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    s.set_defaults(fn=cmd_status)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    if getattr(args, "threads", None) is not None and args.threads < 1:
        fail(f"--threads {args.threads}: expected a number of threads >= 1")
        return 2
    if (getattr(args, "device", None) or "cpu").startswith("cuda") and args.command != "run":
        import torch
        if not torch.cuda.is_available():
            fail(f"--device {args.device} asked for, but CUDA is not available here")
            return 2
    return args.fn(args)
