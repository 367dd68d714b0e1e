"""Per-group summaries computed at ingest (never in a page): mean, n, bootstrap CI, paired tests.

:func:`summarise` is pure: it turns the per-image ``scores`` rows of one (dataset, model) into the
``summary`` and ``pairwise`` rows; the runner reads the scores and the writer stores the result.
"""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd

from .stats import bootstrap_ci, holm, wilcoxon_pair

GROUP = ["method", "method_version", "method_params", "metric", "metric_version", "metric_params", "region"]


def method_label(method: str, params: str | dict | None) -> str:
    """How a (method, parameters) variant reads everywhere: ``integrated_gradients (n_steps=8)``,
    ``attention (layer=-1)``; the bare name without parameters."""
    if params in ("{}", "", None):
        return method
    try:
        values = json.loads(params) if isinstance(params, str) else params
    except ValueError:
        return f"{method} {params}"
    if not isinstance(values, dict) or not values:
        return method
    return f"{method} ({', '.join(f'{k}={_value(v)}' for k, v in sorted(values.items()))})"


def _value(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def relabel(stored: str) -> str:
    """A label as older databases stored it (``name {json}``) in today's form (same text otherwise)."""
    name, sep, params = str(stored).partition(" ")
    return method_label(name, params) if sep and params.startswith("{") else stored


SCORE_COLUMNS = [*GROUP, "image_id", "value"]
SUMMARY_COLUMNS = ["dataset_id", "model_id", *GROUP, "n", "n_undefined", "mean", "ci_low", "ci_high"]
PAIRWISE_COLUMNS = ["dataset_id", "model_id", "metric", "metric_version", "metric_params", "region", "method_a",
                    "method_b", "n", "mean_diff", "p_value", "p_holm"]


def summarise(scores: pd.DataFrame, dataset_id: str, model_id: str, seed: int = 0,
              methods: set[tuple[str, str]] | None = None,
              pairwise_metrics: set[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(summary, pairwise)`` rows of one (dataset, model) from its per-image ``scores`` (``SCORE_COLUMNS``).

    ``methods``: only bootstrap the summaries of these ``(method, canonical params)`` (the caller keeps the
    rest); the paired tests always cover every method, as the Holm family does.  ``pairwise_metrics``:
    only the paired tests of these metrics (None: every metric; an empty set: none) -- the runner tests
    once per model and pass, after all of its chunks, instead of after every chunk."""
    df = scores.copy()
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS), pd.DataFrame(columns=PAIRWISE_COLUMNS)
    df["value"] = df["value"].astype("float64")
    rows = []
    for key, g in df.groupby(GROUP, sort=True, dropna=False):
        if methods is not None and (key[0], key[2]) not in methods:
            continue
        v = g["value"].to_numpy(dtype=np.float64)
        defined = v[~np.isnan(v)]
        lo, hi = bootstrap_ci(defined, seed=seed)
        rows.append((dataset_id, model_id, *key, int(len(defined)), int(len(v) - len(defined)),
                     float(defined.mean()) if len(defined) else None, lo, hi))
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    pairs = []
    df["label"] = [method_label(m, p) for m, p in zip(df["method"], df["method_params"])]
    for (metric, mver, mparams, region), g in df.groupby(["metric", "metric_version", "metric_params", "region"]):
        if pairwise_metrics is not None and metric not in pairwise_metrics:
            continue
        wide = g.pivot_table(index="image_id", columns="label", values="value", aggfunc="first", dropna=False)
        labels = sorted(wide.columns)
        family = []
        for a, b in itertools.combinations(labels, 2):
            n, diff, p = wilcoxon_pair(wide[a].to_numpy(), wide[b].to_numpy())
            family.append([dataset_id, model_id, metric, mver, mparams, region, a, b, n, diff, p])
        adjusted = holm([f[-1] for f in family])
        for f, ph in zip(family, adjusted):
            pairs.append((*f, float(ph)))
    return summary, pd.DataFrame(pairs, columns=PAIRWISE_COLUMNS)
