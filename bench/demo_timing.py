"""Time to first results and total time of ``python -m engine demo`` from nothing (fresh data folder,
no cached checkpoints), the numbers README.md quotes.

    python bench/demo_timing.py [--quick | --full] [--threads 2] [--out bench/demo_timing.json]

The demo runs as a subprocess on a temporary database; this script polls the run's progress file
(``<db>.progress.json``, which the runner keeps current) and records when each stage starts.
*First results* is the moment every model of the first dataset (the trained and the random-weights
smear models) has every method scored by every localisation metric, i.e. when the first dataset's
faithfulness stage starts; the first committed score is reported too.  Besides wall-clock times it
records the run's CPU time (user + system, from /proc and the child's rusage) and the load average,
because on a shared machine the wall time says more about the neighbours than about the demo: on
``T`` idle cores the wall time is about CPU time / T.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.store.progress import read_progress  # noqa: E402


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _first_score_landed(db: Path) -> bool:
    if not db.exists():
        return False
    import duckdb
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute("SELECT count(*) FROM summary").fetchone()[0] > 0
    except duckdb.Error:
        return False


def _run_threads(db: Path) -> int | None:
    """The torch threads per worker the demo ran with (recorded in its run's config)."""
    import duckdb
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            row = con.execute("SELECT config FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
    except duckdb.Error:
        return None
    config = json.loads(row[0]) if row and isinstance(row[0], str) else (row[0] if row else None)
    return (config or {}).get("threads")


def measure(size: str, threads: int | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="demo-timing-"))
    db = work / "r.duckdb"
    cmd = [sys.executable, "-m", "engine", "demo", "--db", str(db), "--data-dir", str(work / "data"),
           "--no-progress"] + ([f"--{size}"] if size != "default" else [])
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {})}
    load_before = os.getloadavg()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "demo.log", "w"))
    stages: dict[str, float] = {}
    first_score = first_results = first_results_cpu = None
    first_dataset = None
    total_jobs = 0
    while proc.poll() is None:
        state = read_progress(db)
        now = time.monotonic() - t0
        if state:
            total_jobs = state.get("jobs_total") or total_jobs
            stage = state.get("stage")
            if stage and stage not in stages:
                stages[stage] = round(now, 1)
                first_dataset = first_dataset or state.get("dataset")
                if first_results is None and first_dataset and stage == f"{first_dataset}: faithfulness":
                    first_results, first_results_cpu = now, _cpu_seconds(proc.pid)
        if first_score is None and _first_score_landed(db):
            first_score = now
        time.sleep(1.0)
    total = time.monotonic() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    state = read_progress(db) or {}
    return {"size": size, "command": " ".join(cmd[1:]), "threads": threads,
            "run_threads": _run_threads(db) if db.exists() else None, "returncode": proc.returncode,
            "host": platform.node(), "cpus": os.cpu_count(), "load_before": [round(x, 1) for x in load_before],
            "load_after": [round(x, 1) for x in os.getloadavg()],
            "first_score_s": None if first_score is None else round(first_score, 1),
            "first_results_s": None if first_results is None else round(first_results, 1),
            "first_results_cpu_s": None if first_results_cpu is None else round(first_results_cpu, 1),
            "total_s": round(total, 1), "total_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "jobs_total": total_jobs, "jobs_done": state.get("jobs_done"), "jobs_failed": state.get("jobs_failed"),
            "status": state.get("status"), "stages_start_s": stages, "work_dir": str(work)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="size")
    size.add_argument("--full", action="store_const", const="full", dest="size")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the demo (default: unset)")
    p.add_argument("--out", default=None, help="append the result as one JSON line to this file")
    args = p.parse_args()
    res = measure(args.size or "default", args.threads)
    print(json.dumps(res, indent=1))
    print(f"\n{res['size']} demo: first results (first dataset, every method, localisation metrics) after "
          f"{res['first_results_s']} s wall / {res['first_results_cpu_s']} s CPU; total {res['total_s']} s wall / "
          f"{res['total_cpu_s']} s CPU; load average {res['load_before'][0]} -> {res['load_after'][0]} on "
          f"{res['cpus']} CPUs")
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(res) + "\n")
    return 0 if res["returncode"] in (0, 1) else 1


if __name__ == "__main__":
    sys.exit(main())
