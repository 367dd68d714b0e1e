"""The only code the dashboard calls: parameterised SQL over short-lived read-only connections.

Every function opens the database read-only, runs its query with bound parameters (never string
formatting of user values) and closes the connection before returning a DataFrame, so the
dashboard never holds a lock that would block the batch writer.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

DEFAULT_DB = "data/results.duckdb"


def db_path() -> str:
    return os.environ.get("XAI_DB", DEFAULT_DB)


@contextlib.contextmanager
def read_only(path: str | Path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def _df(path, sql: str, params: list | None = None) -> pd.DataFrame:
    with read_only(path) as con:
        return con.execute(sql, params or []).df()


def database_exists(path: str | Path) -> bool:
    p = Path(path)
    if not p.is_file():
        return False
    try:
        with read_only(p) as con:
            return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'"
                               ).fetchone()[0] == 1
    except duckdb.Error:
        return False


def schema_version(path) -> int:
    with read_only(path) as con:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def table_counts(path) -> pd.DataFrame:
    tables = ["runs", "datasets", "images", "models", "methods", "metrics", "predictions", "explanations", "scores",
              "curves", "summary", "pairwise", "sanity"]
    sql = " UNION ALL ".join(f"SELECT '{t}' AS table_name, count(*) AS rows FROM {t}" for t in tables)
    return _df(path, sql)


def runs(path) -> pd.DataFrame:
    return _df(path, "SELECT run_id, kind, status, started_at, finished_at, host, git_commit FROM runs "
                     "ORDER BY started_at DESC")


def datasets(path) -> pd.DataFrame:
    return _df(path, "SELECT dataset_id, name, fingerprint, n_images, input_size, resize_mode, classes, root "
                     "FROM datasets ORDER BY name")


def models(path) -> pd.DataFrame:
    return _df(path, "SELECT model_id, dataset_id, name, timm_name, init, val_accuracy, test_accuracy, "
                     "grid_h, grid_w FROM models ORDER BY dataset_id, name, init")


def score_options(path) -> pd.DataFrame:
    """Distinct (dataset, metric, region, method, model) present in the scores."""
    return _df(path, "SELECT DISTINCT s.dataset_id, d.name AS dataset, s.metric, s.region, s.method, s.model_id "
                     "FROM scores s JOIN datasets d USING (dataset_id) ORDER BY ALL")


def method_summary(path) -> pd.DataFrame:
    return _df(path, "SELECT method, metric, region, count(value) AS n, avg(value) AS mean "
                     "FROM scores GROUP BY ALL ORDER BY ALL")


def leaderboard(path, dataset_id: str, metric: str, region: str) -> pd.DataFrame:
    """Per (model, method): mean, 95 % bootstrap CI, n and rank of ``metric`` (precomputed at ingest)."""
    return _df(path, """
        SELECT s.model_id, m.name AS model, m.init, s.method, s.method_params, s.mean, s.ci_low, s.ci_high,
               s.n, s.n_undefined,
               rank() OVER (PARTITION BY s.model_id
                            ORDER BY CASE WHEN coalesce(mt.higher_is_better, true) THEN -s.mean ELSE s.mean END
                            NULLS LAST) AS rank
        FROM summary s JOIN models m USING (model_id) LEFT JOIN metrics mt ON mt.metric = s.metric
        WHERE s.dataset_id = ? AND s.metric = ? AND s.region = ?
        ORDER BY s.model_id, rank""", [dataset_id, metric, region])


def pairwise(path, dataset_id: str, metric: str, region: str) -> pd.DataFrame:
    """Wilcoxon signed-rank tests between methods (same model, same images), Holm-adjusted."""
    return _df(path, """
        SELECT model_id, method_a, method_b, n, mean_diff, p_value, p_holm FROM pairwise
        WHERE dataset_id = ? AND metric = ? AND region = ? ORDER BY model_id, method_a, method_b""",
               [dataset_id, metric, region])


def gallery(path, dataset_id: str, model_id: str, method: str, outcome: str = "all",
            limit: int = 24, offset: int = 0) -> pd.DataFrame:
    """One page of test images with prediction, map and per-image scores.

    ``outcome``: ``all`` / ``correct`` / ``misclassified``.
    """
    if outcome not in ("all", "correct", "misclassified"):
        raise ValueError(f"outcome {outcome!r} is not one of all / correct / misclassified")
    return _df(path, """
        WITH sc AS (
            SELECT image_id, list(metric || ' · ' || region || ' ' || coalesce(printf('%.2f', value), 'n/a')
                                  ORDER BY metric, region) AS scores
            FROM scores WHERE dataset_id = ? AND model_id = ? AND method = ? GROUP BY image_id)
        SELECT p.image_id, i.path, i.mask_path, i.boxes_path, i.label, i.label_name, p.pred, p.confidence,
               e.grid_h, e.grid_w, e.map, e.target, e.method_params, sc.scores, d.root, d.classes,
               d.input_size, d.resize_mode, d.spec
        FROM predictions p
        JOIN images i ON i.dataset_id = p.dataset_id AND i.image_id = p.image_id
        JOIN datasets d ON d.dataset_id = p.dataset_id
        JOIN explanations e ON e.dataset_id = p.dataset_id AND e.model_id = p.model_id AND e.image_id = p.image_id
        LEFT JOIN sc ON sc.image_id = p.image_id
        WHERE p.dataset_id = ? AND p.model_id = ? AND e.method = ?
          AND (? = 'all' OR (? = 'correct' AND p.pred = p.label) OR (? = 'misclassified' AND p.pred <> p.label))
        ORDER BY p.image_id LIMIT ? OFFSET ?""",
               [dataset_id, model_id, method, dataset_id, model_id, method, outcome, outcome, outcome,
                int(limit), int(offset)])


def gallery_count(path, dataset_id: str, model_id: str, method: str, outcome: str = "all") -> int:
    df = _df(path, """
        SELECT count(*) AS n FROM predictions p
        JOIN explanations e ON e.dataset_id = p.dataset_id AND e.model_id = p.model_id AND e.image_id = p.image_id
        WHERE p.dataset_id = ? AND p.model_id = ? AND e.method = ?
          AND (? = 'all' OR (? = 'correct' AND p.pred = p.label) OR (? = 'misclassified' AND p.pred <> p.label))""",
             [dataset_id, model_id, method, outcome, outcome, outcome])
    return int(df["n"].iloc[0])


def sanity_summary(path) -> pd.DataFrame:
    """MPRT per (model, method): mean Spearman / SSIM after the last randomisation step, and the flag."""
    return _df(path, """
        WITH last AS (SELECT model_id, method, max(step) AS step FROM sanity GROUP BY ALL)
        SELECT s.model_id, s.method, s.layer AS fully_randomised_at, count(*) AS images,
               avg(s.spearman) AS mean_spearman, avg(s.ssim) AS mean_ssim,
               avg(s.spearman) > 0.5 AS survives_randomisation
        FROM sanity s JOIN last USING (model_id, method, step)
        GROUP BY ALL ORDER BY s.model_id, mean_spearman DESC""")


def metric_agreement(path, dataset_id: str, model_id: str, region: str) -> pd.DataFrame:
    """Spearman correlation between metrics across methods (method means of one model and region;
    faithfulness metrics join with region 'none'; deletion is negated so higher = better everywhere)."""
    from scipy.stats import spearmanr
    df = _df(path, """
        SELECT s.method, s.metric, CASE WHEN coalesce(mt.higher_is_better, true) THEN s.mean ELSE -s.mean END AS v
        FROM summary s LEFT JOIN metrics mt ON mt.metric = s.metric
        WHERE s.dataset_id = ? AND s.model_id = ? AND s.region IN (?, 'none') AND s.method NOT LIKE 'baseline_%'""",
             [dataset_id, model_id, region])
    wide = df.pivot_table(index="method", columns="metric", values="v")
    cols = list(wide.columns)
    out = pd.DataFrame(index=cols, columns=cols, dtype=float)
    for a in cols:
        for b in cols:
            ok = wide[[a, b]].dropna()
            out.loc[a, b] = spearmanr(ok[a], ok[b]).statistic if len(ok) > 2 else float("nan")
    return out


def region_agreement(path, dataset_id: str, model_id: str, metric: str, a: str = "box", b: str = "mask"
                     ) -> tuple[pd.DataFrame, float]:
    """Method means and ranks of one metric on two region types, and the Spearman correlation of the
    rankings (do rankings survive boxes vs masks?)."""
    from scipy.stats import spearmanr
    df = _df(path, """
        SELECT method, region, mean FROM summary
        WHERE dataset_id = ? AND model_id = ? AND metric = ? AND region IN (?, ?) AND method NOT LIKE 'baseline_%'""",
             [dataset_id, model_id, metric, a, b])
    wide = df.pivot_table(index="method", columns="region", values="mean").dropna()
    if a not in wide or b not in wide or len(wide) < 3:
        return wide, float("nan")
    wide[f"rank_{a}"] = wide[a].rank(ascending=False)
    wide[f"rank_{b}"] = wide[b].rank(ascending=False)
    return wide.sort_values(f"rank_{b}"), float(spearmanr(wide[a], wide[b]).statistic)


def map_array(row) -> np.ndarray:
    """The stored map of a gallery row as a (grid_h, grid_w) float32 array."""
    return np.asarray(row["map"], dtype=np.float32).reshape(int(row["grid_h"]), int(row["grid_w"]))
