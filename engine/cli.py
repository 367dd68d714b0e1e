"""Command line: ``python -m engine {demo,status}``."""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from .store import queries

log = logging.getLogger("engine")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


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


def cmd_demo(args) -> int:
    from .runner.demo import run_demo  # heavy imports only for commands that need them
    t0 = time.monotonic()
    db = Path(args.db)
    summary = run_demo(db, quick=args.quick, seed=args.seed, device=args.device, data_dir=args.data_dir,
                       progress=not args.no_progress)
    log.info("demo finished in %.0f s; results in %s", time.monotonic() - t0, db)
    for model_id, m in summary["models"].items():
        print(f"{model_id}  test accuracy {m['test_accuracy']:.3f}")
        for k, v in sorted(m["scores"].items()):
            print(f"    {k:40s} {v:.3f}")
    print("chance level (region area fraction): " +
          ", ".join(f"{k} {v:.3f}" for k, v in sorted(summary["chance"].items())))
    if args.serve:
        return serve(db, args.port)
    return 0


def cmd_status(args) -> int:
    db = Path(args.db)
    if not queries.database_exists(db):
        print(f"{db}: no results database here; create one with `python -m engine demo --db {db}`")
        return 1
    print(f"database {db}")
    print(queries.table_counts(db).to_string(index=False))
    for title, df in (("runs", queries.runs(db)), ("datasets", queries.datasets(db)),
                      ("models", queries.models(db)), ("scores", queries.method_summary(db)),
                      ("sanity (MPRT, after full randomisation)", queries.sanity_summary(db))):
        print(f"\n{title}:")
        print(df.to_string(index=False) if len(df) else "  (none)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine",
                                description="Do the heatmaps of your vision transformers point where the disease is?")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="generate the demo data, fine-tune, explain, score, write the database")
    d.add_argument("--quick", action="store_true", help="small version for CI (fewer images and epochs)")
    d.add_argument("--serve", action="store_true", help="then serve the dashboard on http://127.0.0.1:8501")
    d.add_argument("--db", default=queries.DEFAULT_DB, help="results database (default %(default)s)")
    d.add_argument("--device", default="cpu", help="cpu or cuda (AMP and pinned memory on cuda)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--data-dir", default=None,
                   help="where demo images and checkpoints go (default: the project's data/)")
    d.add_argument("--port", type=int, default=8501)
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    d.set_defaults(fn=cmd_demo)

    s = sub.add_parser("status", help="what is in the database")
    s.add_argument("--db", default=queries.DEFAULT_DB, help="results database (default %(default)s)")
    s.set_defaults(fn=cmd_status)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    if getattr(args, "device", "cpu").startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            log.error("--device %s asked for, but CUDA is not available here", args.device)
            return 2
    return args.fn(args)
