"""What a publish costs: bytes written over a run, a no-op run, and the latency of one commit into a large store.

0. *demo* (``--demo quick|default``): the real demo experiment, run from scratch (data generation and
   training included) into a new database, once per ``--publish-every`` value (the experiment's group-commit
   interval; 0 = one publish per finished unit).  Bytes written = what the results writer wrote (shard
   files and catalogs, merges and copies included: ``RunReport.db_written``), against the final database
   (catalog + the shard files it lists).
1. *run*: a synthetic run shaped like the quick demo (per (dataset, model): images, predictions, then one
   commit per method chunk with its explanations (14 x 14 maps), scores and curves, jobs and summary rows),
   ``--commits`` commits in all.  Bytes written = the process's ``write_bytes`` (/proc/self/io: what it
   sent to the storage layer, copies included), compared with the final size (catalog + shard folder).
2. *no-op*: the same writes again (identical rows): bytes written and whether the live file changed.
3. *latency*: a store of ``--rows`` score rows (built through the writer in 1 M-row commits), then
   ``--latency-commits`` successive commits of 10 k new score rows (replace_rows + commit) in one writer
   session: median, p99 and maximum wall and CPU seconds (merges start once a size tier holds 16 files,
   so 200 commits cross several), bytes the writer wrote against the live database (catalog + listed
   files), and the time ``verify`` takes over the store before and after.

    nice .venv/bin/python bench/publish_cost.py [--commits 53] [--rows 10000000] [--latency-commits 200]
    nice .venv/bin/python bench/publish_cost.py --demo quick --publish-every 0 10 --skip-run --skip-latency
    nice .venv/bin/python bench/publish_cost.py --store /tmp/bench_dashboard.duckdb --skip-run   # latency only,
        into a copy of an existing store (catalog + .shards folder)

Runs against whatever ``engine.store`` is importable, so the same script measures an older writer too
(PYTHONPATH=<old checkout>).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.store import ResultWriter  # noqa: E402
from engine.store.schema import columns  # noqa: E402

METHODS = ["attention", "rollout", "chefer_gae", "gradcam_attn", "saliency", "integrated_gradients",
           "baseline_random", "baseline_centre"]
METRICS = [("pointing_game", "mask"), ("pointing_game", "box"), ("iou_top5", "mask"), ("iou_top5", "box"),
           ("insertion_auc", "none"), ("deletion_auc", "none")]


def complete(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every column the schema declares (NULL where the benchmark has no value)."""
    return df.assign(**{c: None for c, _ in columns(table) if c not in df.columns})


def write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


def size_of(db: Path) -> int:
    total = db.stat().st_size if db.exists() else 0
    folder = db.with_name(db.name + ".shards")
    if folder.is_dir():
        total += sum(f.stat().st_size for f in folder.iterdir())
    return total


def _base(dataset, model, method):
    return dict(run_id="bench", dataset_id=dataset, model_id=model, method=method, method_version=1, method_params="{}")


def chunk_frames(rng, dataset, model, method, images):
    ex = pd.DataFrame([dict(**_base(dataset, model, method), image_id=i, target=1, grid_h=14, grid_w=14,
                            map=rng.random(196, dtype=np.float32)) for i in images])
    sc = pd.DataFrame([dict(**_base(dataset, model, method), metric=m, metric_version=1, metric_params="{}", region=r,
                            image_id=i, value=float(rng.random())) for i in images for m, r in METRICS])
    cu = pd.DataFrame([dict(**_base(dataset, model, method), metric=m, metric_version=1, metric_params="{}",
                            image_id=i, x=np.linspace(0, 1, 17, dtype=np.float32), y=rng.random(17, dtype=np.float32))
                       for i in images for m, r in METRICS if r == "none"])
    return ex, sc, cu


def live_size(db: Path) -> int:
    """The live database: the catalog and the shard files it lists (not superseded files waiting for deletion)."""
    from engine.store import check_database
    info = check_database(db, deep=False)
    listed = sum(s.bytes for ss in info.manifest.tables.values() for s in ss) if info.sharded else 0
    return db.stat().st_size + listed


def run(db: Path, commits: int, images: int = 48, seed: int = 0, publish_every: float = 0.0) -> int:
    """Write a demo-shaped run; returns the number of commits made."""
    ids = [f"img{i:04d}" for i in range(images)]
    n = 0
    with ResultWriter(db, publish_every=publish_every) as w:
        w.upsert("runs", {"run_id": f"bench-{time.time_ns()}", "status": "running"})
        images = pd.DataFrame([dict(dataset_id="d", image_id=i, split="test", label=0, label_name="a", path=f"{i}.png",
                                    mask_path=None, boxes_path=None, width=64, height=64, regions=["mask"])
                               for i in ids])
        w.replace_rows("images", complete("images", images))
        w.commit()
        n += 1
        model = 0
        while n < commits:
            m = f"model{model}"
            preds = pd.DataFrame([dict(run_id="bench", dataset_id="d", model_id=m, image_id=i, label=0, pred=0,
                                       confidence=0.9, probs=[0.9, 0.1]) for i in ids])
            w.replace_rows("predictions", complete("predictions", preds))
            w.commit()
            n += 1
            for method in METHODS:
                if n >= commits:
                    break
                ex, sc, cu = chunk_frames(np.random.default_rng([seed, model, METHODS.index(method)]), "d", m, method,
                                          ids)
                w.replace_rows("explanations", complete("explanations", ex))
                w.replace_rows("scores", complete("scores", sc))
                w.replace_rows("curves", complete("curves", cu))
                w.upsert("jobs", {"job_key": f"{m}-{method}", "run_id": "bench", "status": "done"})
                w.commit()
                n += 1
            model += 1
    return n


def bench_run(folder: Path, commits: int, images: int = 48, publish_every: float = 0.0) -> dict:
    db = folder / f"run-{publish_every:g}.duckdb"
    b0 = write_bytes()
    n = run(db, commits, images, publish_every=publish_every)
    written = write_bytes() - b0
    final, live = size_of(db), live_size(db)
    b1 = write_bytes()
    mtime = db.stat().st_mtime_ns
    run(db, commits, images, publish_every=publish_every)  # identical rows again: a no-op run (its runs row aside)
    noop = write_bytes() - b1
    return {"commits": n, "written": written, "final": final, "live": live, "noop_written": noop,
            "noop_changed_file": db.stat().st_mtime_ns != mtime}


def bench_demo(folder: Path, size: str, publish_every: float) -> dict:
    """Run the demo experiment (``quick`` or ``default``) from scratch into ``folder``."""
    import logging

    from engine import PROJECT_ROOT
    from engine.runner.experiment import load_experiment
    from engine.runner.run import run_experiment
    logging.basicConfig(level=logging.WARNING)
    name = "demo_quick.toml" if size == "quick" else "demo.toml"
    exp = load_experiment(PROJECT_ROOT / "data" / "experiments" / name)
    exp = exp.model_copy(update={"publish_every": publish_every})
    work = folder / f"demo-{publish_every:g}"
    t = time.monotonic()
    r = run_experiment(exp, work / "results.duckdb", work_dir=work, progress=False)
    return {"publish_every": publish_every, "status": r.status, "jobs": r.done, "wall_s": time.monotonic() - t,
            "publishes": r.db_publishes, "written": r.db_written, "final": r.db_size}


def copy_store(src: Path, dst: Path) -> None:
    """A copy of a results database (catalog and shard folder) at ``dst``."""
    shutil.copyfile(src, dst)
    shard_src = src.with_name(src.name + ".shards")
    if shard_src.is_dir():
        shutil.copytree(shard_src, dst.with_name(dst.name + ".shards"))


def bench_latency(folder: Path, rows: int, store: Path | None = None, commits: int = 200,
                  publish_every: float = 0.0) -> dict:
    db = folder / "big.duckdb"
    if store is not None:   # an existing store: its first writer session moves it to this schema (untimed)
        copy_store(store, db)
        with ResultWriter(db):
            pass
        return _time_commits(db, 0.0, 0, commits, publish_every)
    return _build_and_time(db, rows, commits, publish_every)


def _build_and_time(db: Path, rows: int, commits: int = 200, publish_every: float = 0.0) -> dict:
    per_image = len(METRICS)
    images = 840
    t0 = time.monotonic()
    written = 0
    with ResultWriter(db) as w:
        k = 0
        while written < rows:
            batch = []
            while sum(len(b) for b in batch) < min(1_000_000, rows - written):
                m, meth = divmod(k, len(METHODS))
                batch.append(pd.DataFrame({"run_id": "bench", "dataset_id": "d", "model_id": f"m{m}",
                                           "method": METHODS[meth], "method_version": 1, "method_params": "{}",
                                           "metric": np.repeat([x for x, _ in METRICS], images),
                                           "metric_version": 1, "metric_params": "{}",
                                           "region": np.repeat([r for _, r in METRICS], images),
                                           "image_id": np.tile([f"img{i:04d}" for i in range(images)], per_image),
                                           "value": np.random.default_rng(k).random(images * per_image)}))
                k += 1
            df = pd.concat(batch, ignore_index=True)
            w.replace_rows("scores", complete("scores", df))
            w.commit()
            written += len(df)
    return _time_commits(db, time.monotonic() - t0, written, commits, publish_every)


def _time_commits(db: Path, build_s: float, written: int, commits: int = 200,
                  publish_every: float = 0.0) -> dict:
    """Wall time of each of ``commits`` successive commits of 10 k new score rows into ``db``, in one writer
    session (``publish_every`` 0: every commit publishes, the worst case); bytes the writer wrote over them
    against the live database (catalog + the files it lists, not superseded files waiting for deletion);
    and the cost of verifying every file (``engine verify``) before and after."""
    import duckdb

    from engine.store.verify import verify
    with duckdb.connect(str(db), read_only=True) as con:
        written = written or con.execute("SELECT count(*) FROM scores").fetchone()[0]
    t = time.monotonic()
    v0 = verify(db)
    verify_s = time.monotonic() - t
    times, cpu = [], []   # wall and CPU seconds (all threads) of each commit
    w = ResultWriter(db, publish_every=publish_every).open()
    try:
        live0 = w.size()
        b0, p0 = w.bytes_written, w.publishes
        for r in range(commits):
            df = pd.DataFrame({"run_id": "bench", "dataset_id": "d", "model_id": f"new{r}", "method": "attention",
                               "method_version": 1, "method_params": "{}", "metric": "pointing_game",
                               "metric_version": 1, "metric_params": "{}", "region": "mask",
                               "image_id": [f"img{i:05d}" for i in range(10_000)],
                               "value": np.random.default_rng(r).random(10_000)})
            t, c = time.monotonic(), time.process_time()
            w.replace_rows("scores", complete("scores", df))
            w.commit()
            times.append(time.monotonic() - t)
            cpu.append(time.process_time() - c)
        files = len(w.manifest.tables["scores"])
    finally:
        w.close()
    with ResultWriter(db) as w2:
        live1 = w2.size()
        w_bytes = w.bytes_written - b0
    t = time.monotonic()
    v1 = verify(db)
    verify1_s = time.monotonic() - t
    q = statistics.quantiles(times, n=100, method="inclusive") if len(times) >= 2 else times * 99
    return {"rows": written, "build_s": build_s, "size": live0, "publish_10k_s": statistics.median(times),
            "p99": q[98], "max": max(times), "commits": commits, "publishes": w.publishes - p0,
            "written": w_bytes, "live_before": live0, "live_after": live1, "files_after": files,
            "verify_s": verify_s, "verify_bytes": v0.bytes, "verify_files": v0.files,
            "verify_after_s": verify1_s, "verify_after_bytes": v1.bytes, "verify_after_files": v1.files,
            "damaged": len(v1.damaged), "times": times, "cpu": cpu}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/publish_bench"))
    ap.add_argument("--commits", type=int, default=53)
    ap.add_argument("--images", type=int, default=48, help="test images per chunk (the quick demo: 48)")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-run", action="store_true", help="skip the synthetic demo-shaped run")
    ap.add_argument("--demo", choices=["quick", "default"], help="run the real demo experiment from scratch")
    ap.add_argument("--publish-every", type=float, nargs="+", default=[10.0],
                    help="group-commit intervals (s) for --demo, one run each (0: one publish per unit)")
    ap.add_argument("--store", type=Path, help="time the 10 k-row commit into a copy of this database")
    ap.add_argument("--run-publish-every", type=float, nargs="+", default=[0.0, 10.0],
                    help="publish_every of the synthetic run, one run each (default: 0 and the default 10 s)")
    ap.add_argument("--latency-commits", type=int, default=200,
                    help="successive 10 k-row commits timed in one writer session (default %(default)s)")
    ap.add_argument("--latency-publish-every", type=float, default=0.0,
                    help="the writer's publish_every for the timed commits (default 0: every commit publishes)")
    args = ap.parse_args(argv)
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    mb = 1e6
    for every in (args.publish_every if args.demo else []):
        d = bench_demo(args.dir, args.demo, every)
        print(f"{args.demo} demo, publish_every {every:g} s: {d['jobs']} jobs, {d['wall_s']:.0f} s, {d['publishes']} "
              f"publishes wrote {d['written'] / mb:.1f} MB for a database of {d['final'] / mb:.1f} MB "
              f"({d['written'] / d['final']:.2f}x the final size)")
    if not args.skip_run:
        for every in args.run_publish_every:
            r = bench_run(args.dir, args.commits, args.images, every)
            print(f"run (publish_every {every:g} s): {r['commits']} commits of {args.images} images each, live "
                  f"database {r['live'] / mb:.2f} MB (folder {r['final'] / mb:.2f} MB with superseded files), bytes "
                  f"written {r['written'] / mb:.2f} MB ({r['written'] / r['live']:.2f}x the live database)")
            print(f"no-op run: bytes written {r['noop_written'] / mb:.2f} MB, live catalog replaced: "
                  f"{r['noop_changed_file']}")
    if not args.skip_latency:
        lat = bench_latency(args.dir, args.rows, args.store, args.latency_commits,
                            args.latency_publish_every)
        print(f"store of {lat['rows']:,} score rows ({lat['size'] / mb:.0f} MB, built in {lat['build_s']:.0f} s): "
              f"{lat['commits']} successive commits of 10 k new rows ({lat['publishes']} publishes): median "
              f"{lat['publish_10k_s']:.2f} s, p99 {lat['p99']:.2f} s, max {lat['max']:.2f} s; the writer wrote "
              f"{lat['written'] / mb:.1f} MB while the live database grew {lat['live_before'] / mb:.1f} -> "
              f"{lat['live_after'] / mb:.1f} MB ({lat['written'] / max(lat['live_after'] - lat['live_before'], 1):.2f}"
              f"x the growth); {lat['files_after']} scores files after")
        print(f"verify: {lat['verify_files']} files, {lat['verify_bytes'] / mb:.1f} MB in {lat['verify_s']:.2f} s; "
              f"after the commits {lat['verify_after_files']} files, {lat['verify_after_bytes'] / mb:.1f} MB in "
              f"{lat['verify_after_s']:.2f} s, {lat['damaged']} damaged")
        cpu = lat["cpu"]
        print(f"CPU seconds per commit: median {statistics.median(cpu):.2f}, p99 "
              f"{statistics.quantiles(cpu, n=100, method='inclusive')[98]:.2f}, max {max(cpu):.2f}")
        slow = sorted(range(len(lat['times'])), key=lambda i: -lat['times'][i])[:5]
        print("slowest commits (index: wall s / CPU s): "
              + ", ".join(f"{i}: {lat['times'][i]:.2f} / {cpu[i]:.2f}" for i in sorted(slow)))
    shutil.rmtree(args.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
