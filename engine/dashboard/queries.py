"""The only code the dashboard calls: parameterised SQL, each query on a read-only cursor of its own.

Every function takes a cursor on the live version of the database (:func:`.reader.cursor`: one shared
DuckDB instance per catalog version, safe beside the batch writer, which only renames new catalogs over
the file), runs its query with bound parameters (never string formatting of user values) and returns a
DataFrame.  The ``*_view`` functions run a page's few queries on one cursor: one snapshot.
"""
from __future__ import annotations

import contextlib
import os

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..common.labels import BASELINE_PREFIX, method_label, relabel
from ..common.verdicts import MIN_IMAGES, SURVIVES, mprt_verdict
from ..store import read
from ..store.read import DEFAULT_DB
from .reader import cursor
from .regions import DatasetRegions, stored_regions

# the strategy every view groups by: pretraining and fine-tuning state together, so no view averages a
# fine-tuned model with an untrained one (a database before v5 lacks the two columns: derived from strategy / init)
PRETRAINING_SQL = ("coalesce(m.pretraining, CASE WHEN coalesce(m.strategy, 'random') = 'random' THEN 'none' "
                   "ELSE m.strategy END)")
FINE_TUNING_SQL = "coalesce(m.fine_tuning, CASE WHEN m.init = 'random' THEN 'untrained' ELSE 'trained' END)"
STRATEGY_SQL = f"{PRETRAINING_SQL} || ' · ' || {FINE_TUNING_SQL}"


def db_path() -> str:
    return os.environ.get("XAI_DB", DEFAULT_DB)


def database_exists(path) -> bool:
    """:func:`engine.store.read.database_exists` through the shared reader (every page's rerun asks)."""
    return read.database_exists(path, connection=cursor)


def schema_version(path) -> int:
    return read.schema_version(path, connection=cursor)


def frame(src, sql: str, params: list | dict | None = None) -> pd.DataFrame:
    """Run one query on ``src``: a database path (a cursor of its own) or an open cursor / connection (several
    queries of one page view share it: see the ``*_view`` functions)."""
    if isinstance(src, duckdb.DuckDBPyConnection):
        return src.execute(sql, params or []).df()
    with cursor(src) as con:
        return con.execute(sql, params or []).df()


def table_counts(path) -> pd.DataFrame:
    tables = ["runs", "datasets", "images", "models", "methods", "metrics", "predictions", "explanations", "scores",
              "curves", "summary", "pairwise", "sanity", "trials", "jobs", "failures"]
    with cursor(path) as con:  # an older database may lack the newer tables
        have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        sql = " UNION ALL ".join(f"SELECT '{t}' AS table_name, count(*) AS rows FROM {t}" for t in tables if t in have)
        return frame(con, sql)


def runs(path, limit: int = 1000) -> pd.DataFrame:
    """Run history, newest first: ``seconds`` = the run's wall time (finished - started; NULL while running)
    and ``job_seconds`` = the time of its jobs summed (larger than the wall time when jobs run in
    parallel or share a chunk; NULL without jobs)."""
    with cursor(path) if not isinstance(path, duckdb.DuckDBPyConnection) else _same(path) as con:
        jobs = frame(con, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'jobs'")["n"].iloc[0]
        job_seconds = "(SELECT sum(j.seconds) FROM jobs j WHERE j.run_id = r.run_id)" if jobs else "NULL::DOUBLE"
        return frame(con, f"""
            SELECT run_id, kind, status, started_at, finished_at,
                   date_diff('millisecond', started_at, finished_at) / 1000.0 AS seconds,
                   {job_seconds} AS job_seconds, host, git_commit
            FROM runs r ORDER BY started_at DESC LIMIT ?""", [int(limit)])


@contextlib.contextmanager
def _same(con):
    yield con


def datasets(path) -> pd.DataFrame:
    return frame(path, "SELECT dataset_id, name, fingerprint, n_images, input_size, resize_mode, "
                     "array_to_string(classes, ', ') AS classes, root FROM datasets ORDER BY name")


def dataset_regions(path, dataset_id: str) -> DatasetRegions:
    """The regions of one dataset as ingest stored them (:func:`.regions.stored_regions`; ``*``: a database
    no writer has opened since version 8 lacks the region columns); none for an unknown dataset."""
    df = frame(path, "SELECT * FROM datasets WHERE dataset_id = ?", [dataset_id])
    return stored_regions(None if df.empty else df.iloc[0].to_dict())


def models(path) -> pd.DataFrame:
    """One row per model; ``pretraining`` and ``fine_tuning`` are the two fields a strategy is made of."""
    return frame(path, f"SELECT model_id, dataset_id, name, arch, {PRETRAINING_SQL} AS pretraining, "
                     f"{FINE_TUNING_SQL} AS fine_tuning, test_accuracy, test_balanced_accuracy, test_macro_f1, "
                     "test_auroc, val_accuracy, strategy, init, timm_name, grid_h, grid_w "
                     "FROM models m ORDER BY dataset_id, fine_tuning, name, init")


def classes(path, dataset_id: str) -> list[str]:
    df = frame(path, "SELECT classes FROM datasets WHERE dataset_id = ?", [dataset_id])
    return list(df["classes"].iloc[0]) if len(df) else []


def failure_count(path) -> int:
    return int(frame(path, "SELECT count(*) AS n FROM failures")["n"].iloc[0])


def score_options(path) -> pd.DataFrame:
    """Distinct (dataset, metric, region, method, model) present (read from the precomputed summary)."""
    return frame(path, "SELECT DISTINCT s.dataset_id, d.name AS dataset, s.metric, s.region, s.method, s.model_id "
                     "FROM summary s JOIN datasets d USING (dataset_id) ORDER BY ALL")


def method_options(path, dataset_id: str, model_id: str) -> pd.DataFrame:
    """(method, method_params) explained for one model, from the summary."""
    return frame(path, "SELECT DISTINCT method, method_params FROM summary WHERE dataset_id = ? AND model_id = ? "
                     "ORDER BY ALL", [dataset_id, model_id])


def method_summary(path) -> pd.DataFrame:
    """Per method, metric, region and fine-tuning state (never averaging a fine-tuned with an untrained
    model): models, images scored and the mean of the models' means."""
    return frame(path, f"SELECT s.method, s.metric, s.region, {FINE_TUNING_SQL} AS fine_tuning, "
                     "count(DISTINCT s.model_id) AS models, sum(s.n) AS n, avg(s.mean) AS mean_of_model_means "
                     "FROM summary s LEFT JOIN models m USING (model_id) GROUP BY ALL ORDER BY ALL")


def leaderboard(path, dataset_id: str, metric: str, region: str) -> pd.DataFrame:
    """Per (model, method): mean, 95 % bootstrap CI and n of ``metric`` (precomputed at ingest), best first
    within each model.  Unranked: the rank (baselines excluded) is :func:`.leaderboard.rank_within`'s."""
    return frame(path, f"""
        SELECT s.model_id, m.name AS model, m.init, m.arch, {STRATEGY_SQL} AS strategy,
               {FINE_TUNING_SQL} AS fine_tuning, s.method, s.method_params, s.mean, s.ci_low,
               s.ci_high, s.n, s.n_undefined, coalesce(mt.higher_is_better, true) AS higher_is_better,
               s.metric_params, s.n_degenerate, s.substrate, me.baseline AS method_baseline, s.gap_random,
               s.p_random, s.gap_centre, s.p_centre, q.near_chance, s.n_common, s.mean_common,
               s.gap_random_ci_low, s.gap_random_ci_high, s.gap_centre_ci_low, s.gap_centre_ci_high,
               q.twin_model_id
        FROM summary s JOIN models m USING (model_id) LEFT JOIN metrics mt ON mt.metric = s.metric
             LEFT JOIN methods me ON me.method = s.method
             LEFT JOIN model_quality q ON q.dataset_id = s.dataset_id AND q.model_id = s.model_id
        WHERE s.dataset_id = ? AND s.metric = ? AND s.region = ?
        ORDER BY s.model_id, CASE WHEN coalesce(mt.higher_is_better, true) THEN -s.mean ELSE s.mean END NULLS LAST,
                 s.method, s.method_params""", [dataset_id, metric, region])


def pairwise(path, dataset_id: str, metric: str, region: str) -> pd.DataFrame:
    """Wilcoxon signed-rank tests between methods (same model, same images), Holm-adjusted."""
    df = frame(path, """
        SELECT model_id, method_a, method_b, n, mean_diff, p_value, p_holm FROM pairwise
        WHERE dataset_id = ? AND metric = ? AND region = ? ORDER BY model_id, method_a, method_b""",
             [dataset_id, metric, region])
    return df.assign(method_a=df["method_a"].map(relabel), method_b=df["method_b"].map(relabel))


OUTCOMES = ("all", "correct", "misclassified")
# sort keys the page may ask for -> ORDER BY clauses (fixed text, never user input)
GALLERY_SORTS = {
    "image id": "p.image_id",
    "confidence, lowest first": "p.confidence ASC, p.image_id",
    "confidence, highest first": "p.confidence DESC, p.image_id",
    "score on the cards, lowest first": "o.value ASC NULLS LAST, p.image_id",
    "score on the cards, highest first": "o.value DESC NULLS LAST, p.image_id",
}

# the page's images: one (dataset, model, method) with every filter bound as a parameter; the metric
# filter and the sort score (the score on the cards) are LEFT JOINs that match nothing when none is chosen
_GALLERY_PAGE = """
    SELECT p.image_id, p.label, p.pred, p.confidence, f.value AS filter_value, o.value AS sort_value
    FROM predictions p
    SEMI JOIN explanations e ON e.dataset_id = p.dataset_id AND e.model_id = p.model_id
         AND e.image_id = p.image_id AND e.method = $method AND e.method_params = $params
    LEFT JOIN scores f ON f.dataset_id = p.dataset_id AND f.model_id = p.model_id AND f.image_id = p.image_id
         AND f.method = $method AND f.method_params = $params AND f.metric = $fmetric AND f.region = $fregion
    LEFT JOIN scores o ON o.dataset_id = p.dataset_id AND o.model_id = p.model_id AND o.image_id = p.image_id
         AND o.method = $method AND o.method_params = $params AND o.metric = $ometric AND o.region = $oregion
    WHERE p.dataset_id = $dataset AND p.model_id = $model
      AND ($outcome = 'all' OR ($outcome = 'correct' AND p.pred = p.label)
           OR ($outcome = 'misclassified' AND p.pred <> p.label))
      AND ($label IS NULL OR p.label = $label)
      AND p.confidence BETWEEN $conf_lo AND $conf_hi
      AND ($fmetric IS NULL OR f.value BETWEEN $f_lo AND $f_hi)"""


def _gallery_params(dataset_id, model_id, method, method_params, outcome, label, conf, metric_filter,
                    sort_score=None) -> dict:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of all / correct / misclassified")
    fmetric, fregion, f_lo, f_hi = metric_filter or (None, None, 0.0, 0.0)
    ometric, oregion = sort_score or (None, None)
    return {"dataset": dataset_id, "model": model_id, "method": method, "params": method_params,
            "outcome": outcome, "label": None if label is None else int(label), "conf_lo": float(conf[0]),
            "conf_hi": float(conf[1]), "fmetric": fmetric, "fregion": fregion, "f_lo": float(f_lo),
            "f_hi": float(f_hi), "ometric": ometric, "oregion": oregion}


def gallery(path, dataset_id: str, model_id: str, method: str, outcome: str = "all", limit: int = 24,
            offset: int = 0, *, method_params: str = "{}", label: int | None = None,
            conf: tuple[float, float] = (0.0, 1.0), metric_filter: tuple[str, str, float, float] | None = None,
            sort: str = "image id", sort_score: tuple[str, str] | None = None) -> pd.DataFrame:
    """One page of test images with prediction, map and per-image scores of one (model, method).

    ``outcome``: all / correct / misclassified; ``label``: true class index or None; ``conf``: the
    prediction-confidence range; ``metric_filter``: (metric, region, low, high) keeps images whose score
    lies in [low, high] (e.g. pointing game 0..0 = the misses); ``sort``: a key of GALLERY_SORTS.
    """
    params = _gallery_params(dataset_id, model_id, method, method_params, outcome, label, conf, metric_filter,
                             sort_score)
    order = GALLERY_SORTS.get(sort)
    if order is None:
        raise ValueError(f"sort {sort!r} is not one of {sorted(GALLERY_SORTS)}")
    params.update(limit=int(limit), offset=int(offset))
    return frame(path, f"""
        WITH page AS ({_GALLERY_PAGE} ORDER BY {order} LIMIT $limit OFFSET $offset),
        sc AS (
            SELECT s.image_id, list(s.metric || CASE WHEN s.region = 'none' THEN '' ELSE ' · ' || s.region END
                                    || ' ' || coalesce(printf('%.2f', s.value), 'n/a')
                                    ORDER BY s.metric, s.region) AS scores
            FROM scores s SEMI JOIN page USING (image_id)
            WHERE s.dataset_id = $dataset AND s.model_id = $model AND s.method = $method
              AND s.method_params = $params GROUP BY s.image_id)
        SELECT page.*, i.path, i.mask_path, i.boxes_path, i.label_name, e.grid_h, e.grid_w, e.map, e.target,
               e.method_params, sc.scores, d.root, d.classes, d.input_size, d.resize_mode, d.spec,
               (SELECT any_value(g.kind) FROM degenerate_maps g WHERE g.dataset_id = $dataset AND g.model_id = $model
                AND g.image_id = page.image_id AND g.method = $method AND g.method_params = $params) AS degenerate
        FROM page
        JOIN images i ON i.dataset_id = $dataset AND i.image_id = page.image_id
        JOIN datasets d ON d.dataset_id = $dataset
        JOIN explanations e ON e.dataset_id = $dataset AND e.model_id = $model AND e.image_id = page.image_id
             AND e.method = $method AND e.method_params = $params
        LEFT JOIN sc ON sc.image_id = page.image_id
        ORDER BY {order.replace("p.", "page.").replace("o.value", "page.sort_value")}""", params)


def leaderboard_view(path, dataset_id: str, metric: str, region: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`leaderboard` and :func:`pairwise` on one cursor (one snapshot)."""
    with cursor(path) as con:
        return leaderboard(con, dataset_id, metric, region), pairwise(con, dataset_id, metric, region)


def gallery_view(path, dataset_id: str, model_id: str, method: str, outcome: str, limit: int, offset: int,
                 sort: str = "image id", sort_score: tuple[str, str] | None = None,
                 **filters) -> tuple[int, pd.DataFrame]:
    """(:func:`gallery_count`, :func:`gallery` page) on one cursor (one snapshot); ``offset`` is clamped
    to the last page; ``sort_score``: (metric, region) the score sorts use."""
    with cursor(path) as con:
        total = gallery_count(con, dataset_id, model_id, method, outcome, **filters)
        offset = max(0, min(int(offset), (max(total, 1) - 1) // int(limit) * int(limit)))
        return total, gallery(con, dataset_id, model_id, method, outcome, limit, offset, sort=sort,
                              sort_score=sort_score, **filters)


def gallery_count(path, dataset_id: str, model_id: str, method: str, outcome: str = "all", *,
                  method_params: str = "{}", label: int | None = None, conf: tuple[float, float] = (0.0, 1.0),
                  metric_filter: tuple[str, str, float, float] | None = None) -> int:
    params = _gallery_params(dataset_id, model_id, method, method_params, outcome, label, conf, metric_filter)
    return int(frame(path, f"SELECT count(*) AS n FROM ({_GALLERY_PAGE})", params)["n"].iloc[0])


def model_confusion(path, model_id: str) -> pd.DataFrame:
    """The stored test confusion matrix of one model (``models.confusion``: rows = true class, columns =
    predicted) with its dataset's classes: one row (``confusion`` JSON text, ``classes``) or none."""
    return frame(path, """
        SELECT CAST(m.confusion AS VARCHAR) AS confusion, d.classes FROM models m JOIN datasets d USING (dataset_id)
        WHERE m.model_id = ? AND m.confusion IS NOT NULL""", [model_id])


def image_detail(path, dataset_id: str, model_id: str, image_id: str) -> pd.DataFrame:
    """The image, its regions' files, the dataset and this model's prediction (one row or none)."""
    return frame(path, """
        SELECT i.image_id, i.split, i.label, i.label_name, i.path, i.mask_path, i.boxes_path, i.width, i.height,
               p.pred, p.confidence, d.root, d.classes, d.spec, d.name AS dataset
        FROM images i JOIN datasets d USING (dataset_id)
        LEFT JOIN predictions p ON p.dataset_id = i.dataset_id AND p.image_id = i.image_id AND p.model_id = ?
        WHERE i.dataset_id = ? AND i.image_id = ?""", [model_id, dataset_id, image_id])


def image_view(path, dataset_id: str, model_id: str, image_id: str) -> tuple[pd.DataFrame, ...]:
    """(:func:`image_detail`, :func:`image_maps`, :func:`image_scores`, :func:`image_curves`) on one cursor
    (one snapshot)."""
    with cursor(path) as con:
        return tuple(f(con, dataset_id, model_id, image_id) for f in (image_detail, image_maps, image_scores,
                                                                        image_curves))


def image_maps(path, dataset_id: str, model_id: str, image_id: str) -> pd.DataFrame:
    """Every method's map of one image under one model, with ``degenerate`` (zero / constant / nonfinite:
    a map the metrics refused; NULL otherwise)."""
    return frame(path, """
        SELECT e.method, e.method_params, e.target, e.grid_h, e.grid_w, e.map,
               (SELECT any_value(g.kind) FROM degenerate_maps g WHERE g.dataset_id = e.dataset_id
                AND g.model_id = e.model_id AND g.image_id = e.image_id AND g.method = e.method
                AND g.method_params = e.method_params) AS degenerate
        FROM explanations e
        WHERE e.dataset_id = ? AND e.model_id = ? AND e.image_id = ? ORDER BY e.method, e.method_params""",
               [dataset_id, model_id, image_id])


def image_scores(path, dataset_id: str, model_id: str, image_id: str) -> pd.DataFrame:
    return frame(path, """
        SELECT method, method_params, metric, region, value FROM scores
        WHERE dataset_id = ? AND model_id = ? AND image_id = ? ORDER BY ALL""", [dataset_id, model_id, image_id])


def image_curves(path, dataset_id: str, model_id: str, image_id: str) -> pd.DataFrame:
    """Insertion / deletion curves of one image, one row per (method, metric, step)."""
    return frame(path, """
        SELECT method, method_params, metric, generate_subscripts(x, 1) AS step, unnest(x) AS x, unnest(y) AS y
        FROM curves WHERE dataset_id = ? AND model_id = ? AND image_id = ? ORDER BY method, method_params, metric,
        step""",
               [dataset_id, model_id, image_id])


def sanity_summary(path) -> pd.DataFrame:
    """MPRT per (model, method): images with a Spearman value (``images``) of those tried, mean Spearman /
    SSIM after the last randomisation step, the flag (mean Spearman above
    :data:`engine.metrics.sanity.SURVIVES`; NULL below :data:`~engine.metrics.sanity.MIN_IMAGES` valued
    images and for a baseline map) and the :func:`~engine.metrics.sanity.mprt_verdict`."""
    df = frame(path, """
        WITH last AS (SELECT model_id, method, max(step) AS step FROM sanity GROUP BY ALL)
        SELECT s.model_id, s.method, s.layer AS fully_randomised_at, count(s.spearman) AS images,
               count(*) AS images_tried, avg(s.spearman) AS mean_spearman, avg(s.ssim) AS mean_ssim,
               CASE WHEN count(s.spearman) >= ? AND NOT starts_with(any_value(s.method), ?) THEN avg(s.spearman) > ? END
                   AS survives_randomisation
        FROM sanity s JOIN last USING (model_id, method, step)
        GROUP BY ALL ORDER BY s.model_id, mean_spearman DESC""", [MIN_IMAGES, BASELINE_PREFIX, SURVIVES])
    return df.assign(verdict=[mprt_verdict(m, int(n), s, int(t)) for m, n, s, t in
                              zip(df["method"], df["images"], df["mean_spearman"], df["images_tried"])])


def metric_agreement(path, dataset_id: str, model_id: str, region: str) -> pd.DataFrame:
    """Spearman correlation between metrics across methods (method means of one model and region;
    faithfulness metrics join with region 'none'; deletion is negated so higher = better everywhere)."""
    df = labelled(frame(path, """
        SELECT s.method, s.method_params, s.metric,
               CASE WHEN coalesce(mt.higher_is_better, true) THEN s.mean ELSE -s.mean END AS v
        FROM summary s LEFT JOIN metrics mt ON mt.metric = s.metric
        WHERE s.dataset_id = ? AND s.model_id = ? AND s.region IN (?, 'none') AND s.method NOT LIKE 'baseline_%'""",
                      [dataset_id, model_id, region]))
    wide = df.pivot_table(index="method", columns="metric", values="v")
    return wide.corr(method="spearman", min_periods=3)


def region_agreement(path, dataset_id: str, model_id: str, metric: str, a: str = "box", b: str = "mask"
                     ) -> tuple[pd.DataFrame, float]:
    """Method means and ranks of one metric on two region types, and the Spearman correlation of the
    rankings (do rankings survive boxes vs masks?)."""
    df = labelled(frame(path, """
        SELECT method, method_params, region, mean FROM summary
        WHERE dataset_id = ? AND model_id = ? AND metric = ? AND region IN (?, ?) AND method NOT LIKE 'baseline_%'""",
                      [dataset_id, model_id, metric, a, b]))
    wide = df.pivot_table(index="method", columns="region", values="mean").dropna()
    if a not in wide or b not in wide or len(wide) < 3:
        return wide, float("nan")
    wide[f"rank_{a}"] = wide[a].rank(ascending=False)
    wide[f"rank_{b}"] = wide[b].rank(ascending=False)
    return wide.sort_values(f"rank_{b}"), float(spearmanr(wide[a], wide[b]).statistic)


def labelled(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``method`` replaced by its display label (name, plus parameters when not default)."""
    return df.assign(method=[method_label(m, p) for m, p in zip(df["method"], df["method_params"])])


def map_array(row) -> np.ndarray:
    """The stored map of a gallery row as a (grid_h, grid_w) float32 array."""
    return np.asarray(row["map"], dtype=np.float32).reshape(int(row["grid_h"]), int(row["grid_w"]))
