"""Record a finished run's job timeline for the estimate test, and replay it: how far the Overview's
estimate of the time left (``engine.dashboard.live.remaining_estimate``) is from the time the run really
took, at every quarter of its jobs.

    python bench/progress_estimate.py record --db RUN.duckdb --experiment EXP.toml --out tests/recorded_run.json
    python bench/progress_estimate.py replay tests/recorded_run.json

``record`` keeps, per finished job of the database's latest run, when it finished (seconds since the
run's first job started), its dataset and its stage kind, plus the run's plan (``run_plan``) and end.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.dashboard.live import remaining_estimate  # noqa: E402


def record(db: str, experiment: str, out: str) -> None:
    from engine.metrics import METRICS
    from engine.runner.experiment import load_experiment
    from engine.runner.progress import run_plan
    from engine.store.read import read_only
    with read_only(db) as con:
        run_id, t0, t1 = con.execute("SELECT run_id, started_at, finished_at FROM runs ORDER BY started_at DESC "
                                     "LIMIT 1").fetchone()
        sizes = {n: (a, b) for n, a, b in con.execute(
            "SELECT d.name, (SELECT count(*) FROM images i WHERE i.dataset_id = d.dataset_id), "
            "(SELECT count(DISTINCT image_id) FROM explanations e WHERE e.dataset_id = d.dataset_id) "
            "FROM datasets d").fetchall()}
        rows = con.execute("SELECT j.kind, d.name, CAST(j.metrics AS VARCHAR), j.finished_at, j.started_at, j.method "
                           "FROM jobs j JOIN datasets d USING (dataset_id) WHERE j.run_id = ? "
                           "ORDER BY j.finished_at", [run_id]).fetchall()
    first = min(r[4] for r in rows)
    jobs = []
    for kind, dataset, metrics, finished, _, method in rows:
        if kind == "evaluate":
            kind = METRICS[next(iter(json.loads(metrics)))].kind
        jobs.append([round((finished - first).total_seconds(), 3), dataset, kind, method])
    end = round(((t1 or rows[-1][3]) - first).total_seconds(), 3)
    plan = run_plan(load_experiment(experiment), sizes)
    Path(out).write_text(json.dumps({"plan": plan, "jobs": jobs, "end": end}, indent=0) + "\n")
    print(f"{len(jobs)} jobs over {end:.0f} s -> {out}")


def replay(recorded: dict) -> list[tuple[float, float, float]]:
    """(fraction of jobs done, estimated seconds left, actual seconds left) at each finished job, the state
    rebuilt as :class:`engine.runner.progress.RunProgress` keeps it (the time since the previous finished
    job counted to the finished job's kind)."""
    plan, jobs, end = recorded["plan"], recorded["jobs"], recorded["end"]
    index = {(s["dataset"], s["kind"]): k for k, s in enumerate(plan)}
    total = len(jobs)
    costs: dict[str, list] = {}
    done: dict[int, int] = {}
    mark, out = 0.0, []
    for n, (t, dataset, kind, method) in enumerate(jobs, 1):
        k = index[(dataset, kind)]
        for key in (kind, *([f"{kind}:{method}"] if method else [])):
            c = costs.setdefault(key, [0.0, 0])
            c[0] += t - mark
            c[1] += int(plan[k].get("images") or 1)
        mark = t
        done[k] = done.get(k, 0) + 1
        state = {"plan": plan, "stage_index": k, "stage_total": plan[k]["total"], "stage_done": done[k],
                 "costs": costs, "mark": mark}
        est = remaining_estimate(state, t)
        out.append((n / total, est, end - t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--db", required=True)
    r.add_argument("--experiment", required=True)
    r.add_argument("--out", required=True)
    p = sub.add_parser("replay")
    p.add_argument("recorded")
    args = ap.parse_args()
    if args.cmd == "record":
        record(args.db, args.experiment, args.out)
        return
    points = replay(json.loads(Path(args.recorded).read_text()))
    for q in (0.25, 0.5, 0.75):
        frac, est, actual = next(p for p in points if p[0] >= q)
        print(f"after {frac:.0%} of the jobs: estimate {est:.0f} s, actual {actual:.0f} s "
              f"({(est - actual) / actual:+.0%})")


if __name__ == "__main__":
    main()
