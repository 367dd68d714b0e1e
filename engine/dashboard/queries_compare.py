"""Read-only queries of the Compare and Runs pages (same rules as :mod:`engine.dashboard.queries`:
parameterised SQL, a read-only cursor of the shared reader per call)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .queries import FINE_TUNING_SQL, PRETRAINING_SQL, STRATEGY_SQL, frame

CONFOUNDER_METRICS = ("energy_pg", "mass_accuracy")


def strategy_comparison(path, dataset_id: str, metric: str, region: str) -> pd.DataFrame:
    """Method means of every model of a dataset with its pretraining strategy and architecture
    (strategy falls back to the init when a database predates the column)."""
    return frame(path, f"""
        SELECT {STRATEGY_SQL} AS strategy, coalesce(m.arch, m.name) AS arch, s.model_id,
               m.test_accuracy, m.test_balanced_accuracy, m.val_accuracy,
               json_extract_string(m.hparams, '$.pretraining.steps') AS pretrain_steps,
               CAST(json_extract_string(m.hparams, '$.pretraining.loss_last') AS DOUBLE) AS pretrain_final_loss,
               json_extract_string(m.hparams, '$.pretraining.collapse') AS pretrain_collapse,
               s.method, s.method_params, s.mean, s.ci_low, s.ci_high, s.n
        FROM summary s JOIN models m USING (model_id)
        WHERE s.dataset_id = ? AND s.metric = ? AND s.region = ? ORDER BY ALL""", [dataset_id, metric, region])


def metric_pairs(path, dataset_id: str, model_id: str, region: str, metric_a: str, metric_b: str,
                 limit: int = 20000) -> pd.DataFrame:
    """Per-image values of two metrics for every method (at most ``limit`` rows, for a scatter)."""
    return frame(path, """
        SELECT method, method_params, image_id,
               max(value) FILTER (WHERE metric = $a) AS a, max(value) FILTER (WHERE metric = $b) AS b
        FROM scores WHERE dataset_id = $dataset AND model_id = $model AND region = $region AND metric IN ($a, $b)
        GROUP BY ALL HAVING a IS NOT NULL AND b IS NOT NULL ORDER BY method, method_params, image_id
        LIMIT $limit""", {"a": metric_a, "b": metric_b, "dataset": dataset_id, "model": model_id, "region": region,
                          "limit": int(limit)})


def per_method_spearman(pairs: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of the two metrics across images, per method (from :func:`metric_pairs`)."""
    rows = []
    for (method, params), g in pairs.groupby(["method", "method_params"], sort=True):
        ok = len(g) > 2 and g["a"].nunique() > 1 and g["b"].nunique() > 1
        rows.append({"method": method, "method_params": params, "images": len(g),
                     "spearman": float(spearmanr(g["a"], g["b"]).statistic) if ok else np.nan})
    return pd.DataFrame(rows, columns=["method", "method_params", "images", "spearman"])


def depth_ablation(path, dataset_id: str, model_id: str, region: str) -> pd.DataFrame:
    """Summary rows of methods run with an explicit ``layer`` parameter, with that layer as a number."""
    return frame(path, """
        SELECT method, CAST(json_extract_string(method_params, '$.layer') AS INTEGER) AS layer, method_params,
               metric, mean, ci_low, ci_high, n
        FROM summary WHERE dataset_id = ? AND model_id = ? AND region = ?
          AND json_extract_string(method_params, '$.layer') IS NOT NULL
        ORDER BY method, metric, layer""", [dataset_id, model_id, region])


def mprt_curves(path, dataset_id: str, model_id: str) -> pd.DataFrame:
    """MPRT: mean similarity to the original map after each cascading randomisation step, per method."""
    return frame(path, """
        SELECT method, method_params, step, any_value(layer) AS layer, count(*) AS images,
               avg(spearman) AS mean_spearman, avg(ssim) AS mean_ssim
        FROM sanity WHERE dataset_id = ? AND model_id = ? GROUP BY method, method_params, step
        ORDER BY method, method_params, step""", [dataset_id, model_id])


def mean_curves(path, dataset_id: str, model_id: str) -> pd.DataFrame:
    """Insertion / deletion curves averaged over images, per method and step."""
    return frame(path, """
        WITH pts AS (
            SELECT method, method_params, metric, generate_subscripts(x, 1) AS step, unnest(x) AS x, unnest(y) AS y
            FROM curves WHERE dataset_id = ? AND model_id = ?)
        SELECT method, method_params, metric, step, avg(x) AS x, avg(y) AS y, count(*) AS images
        FROM pts GROUP BY ALL ORDER BY method, method_params, metric, step""", [dataset_id, model_id])


def confounders(path, threshold: float) -> pd.DataFrame:
    """Models x methods whose maps put mass on a region named ``marker`` (a spurious cue), flagged where
    the mean share reaches ``threshold`` times the random-map baseline's share for the same model (what a
    map blind to the marker puts there, i.e. about the marker's area share); not flagged without that
    baseline."""
    return frame(path, f"""
        WITH mk AS (
            SELECT s.dataset_id, d.name AS dataset, s.model_id, {STRATEGY_SQL} AS strategy, s.method,
                   s.method_params, s.metric, s.mean, s.ci_low, s.ci_high, s.n
            FROM summary s JOIN datasets d USING (dataset_id) JOIN models m USING (model_id)
            WHERE s.region = 'marker' AND s.metric IN (?, ?))
        SELECT mk.*, b.mean AS random_baseline, mk.mean / nullif(b.mean, 0) AS times_baseline,
               coalesce(mk.mean >= ? * b.mean, false) AS flagged
        FROM mk LEFT JOIN mk b ON b.dataset_id = mk.dataset_id AND b.model_id = mk.model_id
             AND b.metric = mk.metric AND b.method = 'baseline_random'
        WHERE mk.method NOT LIKE 'baseline_%'
        ORDER BY flagged DESC, mk.mean DESC""", [*CONFOUNDER_METRICS, float(threshold)])


def model_options(path) -> pd.DataFrame:
    """Every (dataset, model) with results, the model's test accuracy and its pretraining and fine-tuning
    state, for the pickers."""
    return frame(path, f"""
        SELECT DISTINCT s.dataset_id, d.name AS dataset, s.model_id, m.test_accuracy,
               {PRETRAINING_SQL} AS pretraining, {FINE_TUNING_SQL} AS fine_tuning
        FROM summary s JOIN datasets d USING (dataset_id) LEFT JOIN models m USING (model_id) ORDER BY ALL""")


def best_model(models: pd.DataFrame, dataset_id: str) -> str | None:
    """The model of ``dataset_id`` with the highest test accuracy in :func:`model_options` rows."""
    here = models[models.dataset_id == dataset_id].sort_values(["test_accuracy", "model_id"], ascending=[False, True],
                                                                na_position="last")
    return here.model_id.iloc[0] if len(here) else None


# -- Runs page ---------------------------------------------------------------------------------

def run_config(path, run_id: str) -> pd.DataFrame:
    return frame(path, "SELECT CAST(config AS VARCHAR) AS config, CAST(versions AS VARCHAR) AS versions FROM runs "
                     "WHERE run_id = ?", [run_id])


def jobs(path, run_id: str | None = None, status: str | None = None, limit: int = 1000) -> pd.DataFrame:
    """Finished units of batch work, newest first (optionally of one run / one status)."""
    return frame(path, """
        SELECT job_key, run_id, experiment, kind, dataset_id, model_id, method, method_params, status, n_items,
               n_failed, started_at, finished_at, seconds
        FROM jobs WHERE (? IS NULL OR run_id = ?) AND (? IS NULL OR status = ?)
        ORDER BY finished_at DESC NULLS LAST, job_key LIMIT ?""", [run_id, run_id, status, status, int(limit)])


def jobs_summary(path, run_id: str | None = None) -> pd.DataFrame:
    return frame(path, """
        SELECT kind, status, count(*) AS jobs, sum(n_items) AS items, sum(n_failed) AS failed_items,
               sum(seconds) AS seconds
        FROM jobs WHERE (? IS NULL OR run_id = ?) GROUP BY ALL ORDER BY ALL""", [run_id, run_id])


def failures(path, run_id: str | None = None, stage: str | None = None, limit: int = 1000) -> pd.DataFrame:
    """Failed items with their one-line reasons, newest first."""
    return frame(path, """
        SELECT failed_at, run_id, stage, dataset_id, model_id, method, item, reason, job_key
        FROM failures WHERE (? IS NULL OR run_id = ?) AND (? IS NULL OR stage = ?)
        ORDER BY failed_at DESC NULLS LAST, item LIMIT ?""", [run_id, run_id, stage, stage, int(limit)])


def failure_reasons(path, run_id: str | None = None) -> pd.DataFrame:
    """How often each (stage, reason) occurred."""
    return frame(path, """
        SELECT stage, reason, count(*) AS items, count(DISTINCT model_id) AS models FROM failures
        WHERE (? IS NULL OR run_id = ?) GROUP BY ALL ORDER BY items DESC, stage, reason""", [run_id, run_id])
