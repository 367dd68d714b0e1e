"""Dashboard query benchmark: a synthetic results database the size of a large study, and the median
time of every page's queries on it, uncached by ``st.cache_data`` (what a page pays before its cache
holds the result).

Shape: 10 datasets x 10 models x 12 methods x 10 (metric, region) pairs x 840 test images = 10.08 M
score rows, generated inside DuckDB with ``range()`` in ingest order (one (dataset, model) after the
other), plus the matching images, predictions, explanations (14 x 14 maps), curves, sanity, summary,
pairwise, runs, jobs and failures rows.  Summary CIs are a normal approximation here: the benchmark
times the reads, the bootstrap happens at ingest.

How each query reaches the database (``--mode``):

* ``warm``: as the pages do now, a cursor of the shared reader's instance of the catalog
  (engine/dashboard/reader.py), already open;
* ``cold``: the first query after a publish: the reader opens a new instance for it (attach the catalog,
  bind the views, read the Parquet footers);
* ``fresh``: each call on its own short-lived read-only connection (the dashboard before the shared
  reader; ``engine.store.read.read_only``).

``--compare OTHER`` times every page interleaved (same process, same load) as: ``OTHER`` fresh (e.g. the
all-in-DuckDB layout, built without ``--shards``, as the dashboard read it before), then ``--db`` fresh,
cold, ``publish`` (the page's first view after a publish: a new instance for its first query only) and
warm, each page starting with the checks ``db_state`` runs on every rerun; it prints one table of medians.

    nice .venv/bin/python bench/dashboard_queries.py --db /tmp/bench.duckdb [--rebuild] [--repeat 7]
    nice .venv/bin/python bench/dashboard_queries.py --db /tmp/bench.duckdb --check-pages   # AppTest every page
    nice .venv/bin/python bench/dashboard_queries.py --db /tmp/sharded.duckdb --shards --compare /tmp/tables.duckdb
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.dashboard import guards, reader  # noqa: E402
from engine.dashboard import queries as q  # noqa: E402
from engine.dashboard import queries_compare as qc  # noqa: E402
from engine.store.read import read_only  # noqa: E402
from engine.store.schema import create_schema  # noqa: E402

log = logging.getLogger("bench.dashboard")

DATASETS, MODELS, IMAGES, GRID, STEPS, MPRT_IMAGES = 10, 10, 840, 14, 16, 16
METHODS = [("attention", '{"layer":0}'), ("attention", '{"layer":5}'), ("attention", '{"layer":11}'),
           ("attention", "{}"), ("rollout", "{}"), ("chefer_gae", "{}"), ("chefer_lrp", "{}"), ("gradcam", "{}"),
           ("integrated_gradients", '{"n_steps":24}'), ("saliency", "{}"), ("baseline_random", "{}"),
           ("baseline_centre", "{}")]
METRIC_REGIONS = [("pointing_game", "mask"), ("pointing_game", "box"), ("iou_top5", "mask"), ("iou_top5", "box"),
                  ("energy_pg", "mask"), ("energy_pg", "box"), ("auprc", "mask"), ("mass_accuracy", "mask"),
                  ("insertion_auc", "none"), ("deletion_auc", "none")]
STRATEGIES = ["random", "supervised", "dino", "mae", "hub:in21k"]
ARCHS = ["vit", "deit", "swin"]


def _values(rows) -> str:
    """A VALUES list of the benchmark's own constants (no user input)."""
    return ", ".join("(" + ", ".join(repr(v) for v in r) + ")" for r in rows)


def build(path: Path, images: int = IMAGES) -> None:
    """Write the synthetic database (``images`` test images per dataset)."""
    path.unlink(missing_ok=True)
    shutil.rmtree(path.with_name(path.name + ".shards"), ignore_errors=True)
    con = duckdb.connect(str(path))
    create_schema(con)
    con.execute("SET preserve_insertion_order = true")
    nm, nt = len(METHODS), len(METRIC_REGIONS)
    methods = _values((k, m, p) for k, (m, p) in enumerate(METHODS))
    con.execute(f"CREATE TEMP TABLE me AS SELECT * FROM (VALUES {methods}) t(ki, method, params)")
    metric_regions = _values((k, m, r) for k, (m, r) in enumerate(METRIC_REGIONS))
    con.execute(f"CREATE TEMP TABLE mt AS SELECT * FROM (VALUES {metric_regions}) t(ti, metric, region)")
    con.execute(f"""CREATE TEMP TABLE mo AS SELECT d AS di, m AS mi,
        'bench_ds' || d || '@' || printf('%010d', d) AS dataset_id,
        printf('vit_%d:%s@%02d%02d00000000', m, (['random','supervised','dino','mae','hub:in21k'])[m % 5 + 1], d, m)
            AS model_id, (['random','supervised','dino','mae','hub:in21k'])[m % 5 + 1] AS strategy,
        (['vit','deit','swin'])[m % 3 + 1] AS arch
        FROM range({DATASETS}) r1(d), range({MODELS}) r2(m)""")
    con.execute(f"""INSERT INTO datasets (dataset_id, name, root, fingerprint, classes, input_size, resize_mode,
        n_images, spec) SELECT DISTINCT dataset_id, 'bench_ds' || di, '/nonexistent/bench_ds' || di,
        printf('%010d', di), ['normal', 'benign', 'malignant'], 224, 'resize', {images},
        '{{"name": "bench_ds' || di || '", "root": "/nonexistent"}}' FROM mo""")
    con.execute(f"""INSERT INTO images (dataset_id, image_id, split, label, label_name, path, mask_path, regions)
        SELECT d.dataset_id, printf('test_%05d', i), 'test', i % 3, (['normal','benign','malignant'])[i % 3 + 1],
               printf('images/test_%05d.png', i), printf('masks/test_%05d.png', i), ['mask', 'box']
        FROM datasets d, range({images}) r(i)""")
    con.execute("""INSERT INTO models (model_id, dataset_id, name, timm_name, init, arch, strategy, grid_h, grid_w,
        val_accuracy, test_accuracy, test_balanced_accuracy, test_macro_f1, test_auroc)
        SELECT model_id, dataset_id, 'vit_' || mi, 'vit_base_patch16_224', 'trained', arch, strategy, 14, 14,
               0.6 + 0.03 * mi, 0.6 + 0.03 * mi, 0.58 + 0.03 * mi, 0.55 + 0.03 * mi, 0.7 + 0.02 * mi FROM mo""")
    con.execute("""INSERT INTO metrics VALUES ('pointing_game', 1, 'localisation', true, ''),
        ('iou_top5', 1, 'localisation', true, ''), ('energy_pg', 1, 'localisation', true, ''),
        ('auprc', 1, 'localisation', true, ''), ('mass_accuracy', 1, 'localisation', true, ''),
        ('insertion_auc', 1, 'faithfulness', true, ''), ('deletion_auc', 1, 'faithfulness', false, '')""")
    t = time.perf_counter()
    con.execute(f"""INSERT INTO predictions (run_id, dataset_id, model_id, image_id, label, pred, confidence)
        SELECT 'bench-run-' || di, dataset_id, model_id, printf('test_%05d', i), i % 3,
               CASE WHEN hash(model_id, i) % 100 < 70 + 2 * mi THEN i % 3 ELSE (i + 1) % 3 END,
               0.34 + (hash(i, model_id, 'c') % 660) / 1000.0
        FROM mo, range({images}) r(i) ORDER BY di, mi, i""")
    log.info("predictions in %.1f s", time.perf_counter() - t)
    t = time.perf_counter()
    con.execute(f"""INSERT INTO explanations (run_id, dataset_id, model_id, method, method_version, method_params,
        image_id, target, grid_h, grid_w, map)
        SELECT 'bench-run-' || di, dataset_id, model_id, method, 1, params, printf('test_%05d', i), i % 3,
               {GRID}, {GRID}, list_transform(range({GRID * GRID}), lambda j: ((hash(i, ki, j) % 1000) / 1000.0)::FLOAT)
        FROM mo, me, range({images}) r(i) ORDER BY di, mi, ki, i""")
    log.info("explanations in %.1f s", time.perf_counter() - t)
    n = DATASETS * MODELS * nm * nt * images
    t = time.perf_counter()
    # one flat range in ingest order: image fastest, then (metric, region), method, model, dataset
    con.execute(f"""INSERT INTO scores (run_id, dataset_id, model_id, method, method_version, method_params, metric,
        metric_version, metric_params, region, image_id, value)
        WITH idx AS (SELECT r AS k, r % {images} AS i, (r // {images}) % {nt} AS ti,
                            (r // {images * nt}) % {nm} AS ki, (r // {images * nt * nm}) % {MODELS} AS mi,
                            r // {images * nt * nm * MODELS} AS di FROM range({n}) t(r)),
        raw AS (SELECT idx.*, 0.25 + 0.04 * (ki % 7) + 0.02 * mi AS q, (hash(k) % 100000) / 100000.0 AS u
                FROM idx)
        SELECT 'bench-run-' || raw.di, mo.dataset_id, mo.model_id, me.method, 1, me.params,
               CASE WHEN raw.di = {DATASETS - 1} AND raw.ti = 7 THEN 'energy_pg' ELSE mt.metric END, 1, '{{}}',
               CASE WHEN raw.di = {DATASETS - 1} AND raw.ti = 7 THEN 'marker' ELSE mt.region END,
               printf('test_%05d', raw.i),
               CASE WHEN mt.region = 'box' AND u < 0.005 THEN NULL
                    WHEN mt.metric = 'pointing_game' THEN (u < q)::DOUBLE
                    ELSE least(1.0, greatest(0.0, q + (u - 0.5) * 0.6)) END
        FROM raw JOIN mo USING (di, mi) JOIN me USING (ki) JOIN mt USING (ti) ORDER BY raw.k""")
    log.info("%d scores in %.1f s", n, time.perf_counter() - t)
    t = time.perf_counter()
    con.execute(f"""INSERT INTO curves (run_id, dataset_id, model_id, method, method_version, method_params, metric,
        metric_version, metric_params, image_id, x, y)
        SELECT 'bench-run-' || di, dataset_id, model_id, method, 1, params, c.metric, 1, '{{}}', printf('test_%05d', i),
               list_transform(range({STEPS + 1}), lambda s: (s / {STEPS})::FLOAT),
               list_transform(range({STEPS + 1}),
                              lambda s: (CASE WHEN c.metric = 'insertion_auc' THEN s ELSE {STEPS} - s END
                                         / {STEPS} * (0.5 + (hash(i, ki, s) % 500) / 1000.0))::FLOAT)
        FROM mo, me, (VALUES ('insertion_auc'), ('deletion_auc')) c(metric), range({images}) r(i)
        ORDER BY di, mi, ki, c.metric, i""")
    con.execute(f"""INSERT INTO sanity (run_id, dataset_id, model_id, method, method_version, method_params, step,
        layer, image_id, spearman, ssim)
        SELECT 'bench-run-' || di, dataset_id, model_id, method, 1, params, s,
               CASE WHEN s = 1 THEN 'head' WHEN s = 14 THEN 'embeddings' ELSE 'blocks.' || (13 - s) END,
               printf('test_%05d', i), 1.0 / s + (hash(i, s, ki) % 100) / 1000.0, 1.0 / (s + 1)
        FROM mo, me, range(1, 15) r(s), range({MPRT_IMAGES}) r2(i)""")
    log.info("curves and sanity in %.1f s", time.perf_counter() - t)
    t = time.perf_counter()
    con.execute("""INSERT INTO summary (dataset_id, model_id, method, method_version, method_params, metric,
        metric_version, metric_params, region, n, n_undefined, mean, ci_low, ci_high)
        SELECT dataset_id, model_id, method, method_version, method_params, metric,
        metric_version, metric_params, region, count(value), count(*) - count(value), avg(value),
        avg(value) - 1.96 * stddev_samp(value) / sqrt(count(value)),
        avg(value) + 1.96 * stddev_samp(value) / sqrt(count(value))
        FROM scores GROUP BY ALL""")
    con.execute("""INSERT INTO pairwise SELECT s.dataset_id, s.model_id, s.metric, 1, '{}', s.region,
        a.method || CASE WHEN a.params = '{}' THEN '' ELSE ' ' || a.params END,
        b.method || CASE WHEN b.params = '{}' THEN '' ELSE ' ' || b.params END, ?, 0.01 * (a.ki - b.ki),
        (hash(s.model_id, a.ki, b.ki) % 1000) / 1000.0, least(1.0, (hash(s.model_id, a.ki, b.ki) % 1000) / 100.0)
        FROM (SELECT DISTINCT dataset_id, model_id, metric, region FROM summary) s, me a, me b WHERE a.ki < b.ki""",
                [images])
    log.info("summary and pairwise in %.1f s", time.perf_counter() - t)
    con.execute("""INSERT INTO runs (run_id, kind, status, started_at, finished_at, host, config)
        SELECT DISTINCT 'bench-run-' || di, 'run', CASE WHEN di = 3 THEN 'failed' ELSE 'finished' END,
               TIMESTAMP '2026-01-01' + INTERVAL (di) HOUR, TIMESTAMP '2026-01-01' + INTERVAL (di) HOUR
               + INTERVAL 40 MINUTE, 'bench', '{"experiment": "bench"}' FROM mo""")
    con.execute("""INSERT INTO jobs (job_key, run_id, experiment, kind, dataset_id, model_id, method, method_version,
        method_params, status, n_items, n_failed, started_at, finished_at, seconds)
        SELECT model_id || '/' || ki, 'bench-run-' || di, 'bench', 'evaluate', dataset_id, model_id, method, 1, params,
               CASE WHEN ki = 11 AND mi = 0 THEN 'failed' ELSE 'done' END, ?, CASE WHEN ki = 11 THEN 3 ELSE 0 END,
               TIMESTAMP '2026-01-01' + INTERVAL (di * 100 + mi * 10 + ki) MINUTE,
               TIMESTAMP '2026-01-01' + INTERVAL (di * 100 + mi * 10 + ki + 1) MINUTE, 60.0 FROM mo, me""", [images])
    con.execute("""INSERT INTO failures SELECT 'bench-run-' || di, model_id || '/11', dataset_id, model_id,
        'baseline_centre', printf('test_%05d', i), 'explain', 'bench: synthetic failure', TIMESTAMP '2026-01-01'
        FROM mo, range(3) r(i)""")
    con.execute("CHECKPOINT")
    con.close()
    log.info("database %s: %.2f GB", path, path.stat().st_size / 1e9)


def cases(path: Path) -> dict[str, list[tuple[str, callable]]]:
    """Each page's queries, with the arguments a user would pick (the defaults of the pages)."""
    ds = "bench_ds4@0000000004"
    with duckdb.connect(str(path), read_only=True) as con:
        model = con.execute("SELECT max(model_id) FROM models WHERE dataset_id = ?", [ds]).fetchone()[0]
    gal = dict(method_params="{}")
    return {
        "Overview": [(n, lambda n=n, a=a: getattr(q, n)(path, *a)) for n, a in [
            ("table_counts", ()), ("datasets", ()), ("models", ()), ("method_summary", ()), ("runs", (10,)),
            ("failure_count", ())]],
        "Leaderboard": [
            ("score_options", lambda: q.score_options(path)),
            ("leaderboard_view", lambda: q.leaderboard_view(path, ds, "pointing_game", "mask")),
            ("metric_agreement", lambda: q.metric_agreement(path, ds, model, "mask"))],
        "Gallery, 24 items": [
            ("score_options", lambda: q.score_options(path)), ("model_options", lambda: qc.model_options(path)),
            ("method_options", lambda: q.method_options(path, ds, model)), ("classes", lambda: q.classes(path, ds)),
            ("gallery_view", lambda: q.gallery_view(path, ds, model, "attention", "all", 24, 0, **gal))],
        "Gallery, PG misses, misclassified, sorted, page 3": [
            ("score_options", lambda: q.score_options(path)), ("model_options", lambda: qc.model_options(path)),
            ("method_options", lambda: q.method_options(path, ds, model)), ("classes", lambda: q.classes(path, ds)),
            ("gallery_view", lambda: q.gallery_view(path, ds, model, "chefer_gae", "misclassified", 24, 48,
                                                    sort="confidence, highest first", conf=(0.4, 1),
                                                    metric_filter=("pointing_game", "mask", 0, 0), **gal))],
        "Image detail": [("image_view", lambda: q.image_view(path, ds, model, "test_00123"))],
        "Compare": [
            ("strategy_comparison", lambda: qc.strategy_comparison(path, ds, "pointing_game", "mask")),
            ("metric_pairs", lambda: qc.metric_pairs(path, ds, model, "mask", "pointing_game", "iou_top5")),
            ("region_agreement", lambda: q.region_agreement(path, ds, model, "pointing_game")),
            ("depth_ablation", lambda: qc.depth_ablation(path, ds, model, "mask")),
            ("mprt_curves", lambda: qc.mprt_curves(path, ds, model)),
            ("mean_curves", lambda: qc.mean_curves(path, ds, model)),
            ("confounders", lambda: qc.confounders(path, 0.3))],
        "Runs": [(n, lambda n=n: getattr(qc, n)(path)) for n in
                 ("jobs_summary", "jobs", "failure_reasons", "failures")] + [("runs", lambda: q.runs(path))],
    }


GOALS = {"leaderboard with CIs (leaderboard_view)": ("Leaderboard", "leaderboard_view", 300),
         "gallery page of 24 items (gallery_view)": ("Gallery, 24 items", "gallery_view", 500),
         "gallery page of 24, filtered + sorted (gallery_view)": ("Gallery, PG misses, misclassified, sorted, page 3",
                                                                  "gallery_view", 500)}


MODES = ("warm", "cold", "fresh")


@contextlib.contextmanager
def connections(mode: str):
    """Route the dashboard's queries as ``mode`` says (module docstring); yields what to call before each
    timed query."""
    reader.clear()
    if mode != "fresh":
        yield reader.clear if mode == "cold" else (lambda: None)
        reader.clear()
        return
    saved = q.cursor, guards.cursor
    q.cursor = guards.cursor = read_only   # the dashboard's queries before the shared reader
    try:
        yield lambda: None
    finally:
        q.cursor, guards.cursor = saved


def _timed(fn, before) -> float:
    """Seconds of ``before(); fn()``: a cold query also closes the instance of the catalog it supersedes."""
    t = time.perf_counter()
    before()
    fn()
    return time.perf_counter() - t


def time_pages(path: Path, repeat: int, mode: str = "warm"
               ) -> tuple[list[tuple[str, float, str]], dict[tuple[str, str], float]]:
    """(page, median ms of all its queries together, slowest query) per page, and the median ms of
    every (page, query)."""
    out, medians = [], {}
    for page, calls in cases(path).items():
        totals, per = [], {name: [] for name, _ in calls}
        with connections(mode) as before:
            if mode == "warm":
                for _, fn in calls:
                    fn()   # open the instance and read the footers once, untimed
            for _ in range(repeat):
                took = [(name, _timed(fn, before)) for name, fn in calls]
                for name, sec in took:
                    per[name].append(sec)
                totals.append(sum(sec for _, sec in took))
        slow = max(per, key=lambda k: statistics.median(per[k]))
        out.append((page, statistics.median(totals) * 1e3, f"{slow} {statistics.median(per[slow]) * 1e3:.0f} ms"))
        medians.update({(page, k): statistics.median(v) * 1e3 for k, v in per.items()})
    return out, medians


WAYS = ("fresh", "fresh", "cold", "publish", "warm")   # the first on --compare's database, the others on --db


def compare(path: Path, other: Path, repeat: int) -> list[tuple[str, str, list[float]]]:
    """(page, query, [median ms of ``other`` fresh, ``path`` fresh, cold, publish, warm]), ``repeat`` rounds
    of every page timed in each way in turn.  ``publish``: the page's first view after a publish (a new
    instance for its first query, the page's other queries on it).  Each page starts with the checks
    ``db_state`` runs on every rerun (existence, schema version)."""
    ways = [(other if k == 0 else path, mode) for k, mode in enumerate(WAYS)]
    table = [{page: [("db_state checks", lambda db=db: (q.database_exists(db), q.schema_version(db))), *fns]
              for page, fns in cases(db).items()} for db, _ in ways]
    per: dict[tuple[str, str, int], list[float]] = {}
    for _ in range(repeat):
        for k, ((db, mode), calls) in enumerate(zip(ways, table)):
            with connections("warm" if mode == "publish" else mode) as before:
                if mode == "warm":
                    for fns in calls.values():
                        for _, fn in fns:
                            fn()
                for page, fns in calls.items():
                    for j, (name, fn) in enumerate(fns):
                        first = reader.clear if mode == "publish" and j == 0 else before
                        per.setdefault((page, name, k), []).append(_timed(fn, first))
    return [(page, name, [statistics.median(per[(page, name, k)]) * 1e3 for k in range(len(ways))])
            for page, fns in table[0].items() for name, _ in fns]


def check_pages(path: Path) -> int:
    """Run every page (every Compare view, the image page on one image) once on ``path`` with AppTest;
    prints one line per view and returns the number that failed."""
    from streamlit.testing.v1 import AppTest
    os.environ["XAI_DB"] = str(path)
    root = Path(__file__).resolve().parents[1]
    opts = q.score_options(path)
    image = {}
    if len(opts):
        ds = opts.dataset_id.iloc[0]
        model = opts[opts.dataset_id == ds].model_id.iloc[0]
        rows = q.gallery(path, ds, model, opts[(opts.dataset_id == ds) & (opts.model_id == model)].method.iloc[0])
        if len(rows):
            image = {"dataset": ds, "model": model, "image": rows.image_id.iloc[0]}
    views = [("app.py", {})] + [(str(p.relative_to(root)), {}) for p in sorted((root / "pages").glob("*.py"))]
    views = [v for v in views if "Image" not in v[0] and "Compare" not in v[0]]
    views += [("pages/3_Image.py", image)] + [("pages/4_Compare.py", {"view": v}) for v in
                                             ("strategy", "agreement", "regions", "depth", "sanity", "faithfulness",
                                              "confounders")]
    bad = 0
    for page, params in views:
        t = time.perf_counter()
        at = AppTest.from_file(str(root / page), default_timeout=300)
        for k, v in params.items():
            at.query_params[k] = v
        at.run()
        errors = [e.message for e in at.exception]
        bad += bool(errors)
        note = "; ".join(w.value[:60] for w in at.warning[:1])
        print(f"{page} {params.get('view', '')}: {'FAIL ' + '; '.join(errors) if errors else 'ok'} "
              f"({time.perf_counter() - t:.1f} s){' — ' + note if note else ''}")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="/tmp/bench_dashboard.duckdb")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the database even if it exists")
    ap.add_argument("--images", type=int, default=IMAGES, help="test images per dataset (840: 10.08 M scores)")
    ap.add_argument("--repeat", type=int, default=7, help="timed repetitions per page (median reported)")
    ap.add_argument("--check-pages", action="store_true", help="also run every page once with AppTest")
    ap.add_argument("--mode", choices=MODES, default="warm", help="how each query connects (module docstring)")
    ap.add_argument("--compare", type=Path, help="another built database (e.g. without --shards): a table of "
                                                 "its fresh medians beside --db's fresh, cold and warm ones")
    ap.add_argument("--shards", action="store_true",
                    help="store the per-image tables as Parquet shards (schema 5 layout) before timing: the results "
                         "writer moves them out of the built file, as it does for any schema <= 4 database")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = Path(args.db)
    if args.rebuild or not path.exists():
        build(path, args.images)
    if args.shards:
        from engine.store import ResultWriter, check_database
        if not check_database(path, deep=False).sharded:
            t = time.perf_counter()
            with ResultWriter(path):
                pass
            log.info("moved into Parquet shards in %.0f s", time.perf_counter() - t)
    with duckdb.connect(str(path), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM scores").fetchone()[0]
    shards = path.with_name(path.name + ".shards")
    size = path.stat().st_size + (sum(f.stat().st_size for f in shards.iterdir()) if shards.is_dir() else 0)
    layout = ", Parquet shards" if shards.is_dir() else ""
    print(f"{n:,} score rows in {path} ({size / 1e9:.2f} GB{layout}); median of {args.repeat} runs, "
          f"all of a page's queries, uncached by the pages, connections: {args.mode}; load average "
          f"{os.getloadavg()[0]:.1f}\n")
    if args.compare:
        print(f"| page | query | {args.compare.name} fresh (ms) | {path.name} fresh | cold | publish | warm |\n"
              "|---|---|---:|---:|---:|---:|---:|")
        rows = compare(path, args.compare, args.repeat)
        for page, name, ms in rows:
            print(f"| {page} | {name} | " + " | ".join(f"{v:.0f}" for v in ms) + " |")
        print("\n| page (sum of its queries' medians) | fresh (ms) | fresh | cold | publish | warm |\n"
              "|---|---:|---:|---:|---:|---:|")
        for page in dict.fromkeys(r[0] for r in rows):
            sums = [sum(r[2][k] for r in rows if r[0] == page) for k in range(len(WAYS))]
            print(f"| {page} | " + " | ".join(f"{v:.0f}" for v in sums) + " |")
        print(f"\nload average after: {os.getloadavg()[0]:.1f}")
        return 0
    pages, medians = time_pages(path, args.repeat, args.mode)
    print("| goal | median (ms) | target (ms) |\n|---|---:|---:|")
    for goal, (page, query, target) in GOALS.items():
        print(f"| {goal} | {medians[(page, query)]:.0f} | ≤ {target} |")
    print("\n| page (all its queries) | median (ms) | slowest query (median) |\n|---|---:|---|")
    for page, ms, slow in pages:
        print(f"| {page} | {ms:.0f} | {slow} |")
    return check_pages(path) if args.check_pages else 0


if __name__ == "__main__":
    sys.exit(main())
