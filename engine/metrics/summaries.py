"""Per-group summaries computed at ingest (never in a page): mean, n, bootstrap CI, paired tests, degenerate
maps and the gaps to the random and centre baseline maps.

**Ranked over the same images** (docs/metrics.md, "Guards"): in each (model, metric, region) the *shared
images* are those on which every ranked method (every method but the ``baseline_*`` maps) has a score.
The paired tests (hence the baseline gaps) use only them, and ``mean_common`` is each method's mean over
them, the value the rank and the bold mark use; ``n_common`` counts them.  ``mean`` / ``n`` / the CI stay
the method's own (all its scored images).

:func:`summarise` is pure: it turns the per-image ``scores`` rows of one (dataset, model) into the
``summary`` and ``pairwise`` rows; the runner reads the scores and the writer stores the result.
"""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd

from ..common.labels import is_baseline, method_label
from .faithfulness import SUBSTRATE_DEFAULT
from .stats import bootstrap_ci, holm, wilcoxon_pair

GROUP = ["method", "method_version", "method_params", "metric", "metric_version", "metric_params", "region"]
METHOD_KEY = ["method", "method_version", "method_params"]
BASELINES = {"random": "baseline_random", "centre": "baseline_centre"}


SCORE_COLUMNS = [*GROUP, "image_id", "value"]
DEGENERATE_COLUMNS = [*METHOD_KEY, "image_id", "kind"]
SUMMARY_COLUMNS = ["dataset_id", "model_id", *GROUP, "n", "n_undefined", "mean", "ci_low", "ci_high", "n_degenerate",
                   "substrate", "gap_random", "p_random", "gap_centre", "p_centre", "n_common", "mean_common",
                   "gap_random_ci_low", "gap_random_ci_high", "gap_centre_ci_low", "gap_centre_ci_high"]
GAP_COLUMNS = ["gap_random", "p_random", "gap_centre", "p_centre"]
GAP_CI_COLUMNS = ["gap_random_ci_low", "gap_random_ci_high", "gap_centre_ci_low", "gap_centre_ci_high"]
PAIRWISE_COLUMNS = ["dataset_id", "model_id", "metric", "metric_version", "metric_params", "region", "method_a",
                    "method_b", "n", "mean_diff", "p_value", "p_holm"]


def substrate_of(metric: str, metric_params: str | dict | None) -> str | None:
    """The substrate a faithfulness score switched pixels to / from ('zero' or 'blur'); None otherwise."""
    if metric not in SUBSTRATE_DEFAULT:
        return None
    params = json.loads(metric_params) if isinstance(metric_params, str) and metric_params else metric_params or {}
    return params.get("substrate", SUBSTRATE_DEFAULT[metric])


def baseline_label(labels, kind: str) -> str | None:
    """The label of the ``kind`` ('random' / 'centre') baseline among ``labels``: the default-parameter
    one, else the first variant by name; None when it was not run."""
    name = BASELINES[kind]
    labels = sorted(set(labels))
    if name in labels:
        return name
    return next((lab for lab in labels if lab.startswith(name + " ")), None)


def shared_images(wide: pd.DataFrame) -> pd.Index:
    """The image ids (``wide``'s index; one column per method label) on which every ranked method has a
    score; every row when only baselines were run."""
    ranked = [c for c in wide.columns if not is_baseline(c)]
    return wide.index[wide[ranked].notna().all(axis=1)] if ranked else wide.index


def _gap(pairwise: pd.DataFrame, label: str, base: str | None) -> tuple[float | None, float | None]:
    """(mean paired difference label - base, Holm p) from the pairwise rows of one group."""
    if base is None or label == base:
        return None, None
    hit = pairwise[(pairwise.method_a == label) & (pairwise.method_b == base)]
    sign = 1.0
    if hit.empty:
        hit, sign = pairwise[(pairwise.method_a == base) & (pairwise.method_b == label)], -1.0
    if hit.empty:
        return None, None
    d, p = hit.mean_diff.iloc[0], hit.p_holm.iloc[0]
    return (None if d != d else sign * float(d)), (None if p != p else float(p))


def _gap_ci(shared: pd.DataFrame, label: str, base: str | None, seed: int) -> tuple[float | None, float | None]:
    """95 % BCa bootstrap interval of the mean paired difference label - base over the shared images (the
    interval of the gap :func:`_gap` reads from the paired test); None where there is no such pair."""
    if base is None or label == base or label not in shared or base not in shared:
        return None, None
    d = (shared[label] - shared[base]).dropna().to_numpy(dtype=np.float64)
    lo, hi = bootstrap_ci(d, seed=seed)
    return (None, None) if lo != lo else (lo, hi)


def summarise(scores: pd.DataFrame, dataset_id: str, model_id: str, seed: int = 0,
              methods: set[tuple[str, str]] | None = None, degenerate: pd.DataFrame | None = None,
              previous: pd.DataFrame | None = None,
              pairwise_metrics: set[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(summary, pairwise)`` rows of one (dataset, model) from its per-image ``scores`` (``SCORE_COLUMNS``).

    ``degenerate``: the model's degenerate maps (``DEGENERATE_COLUMNS``); their NULL scores are counted in
    ``n_degenerate``, not in ``n_undefined``.  ``methods``: only bootstrap the summaries of these
    ``(method, canonical params)``; the other methods' rows are returned too, with their CI taken from
    ``previous`` (the stored summary rows) when it has them, so the baseline gaps of every row follow the
    paired tests, which always cover every method (the Holm family).  ``pairwise_metrics``: only the paired
    tests of these metrics (None: every metric; an empty set: none) -- the runner tests once per model and
    pass, after all of its chunks, instead of after every chunk; a row whose metric is not tested here keeps
    the baseline gaps of ``previous``."""
    df = scores.copy()
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS), pd.DataFrame(columns=PAIRWISE_COLUMNS)
    df["value"] = df["value"].astype("float64")
    df["label"] = [method_label(m, p) for m, p in zip(df["method"], df["method_params"])]
    degenerate = degenerate if degenerate is not None else pd.DataFrame(columns=DEGENERATE_COLUMNS)
    bad = {tuple(r) for r in degenerate[[*METHOD_KEY, "image_id"]].itertuples(index=False)}
    n_bad = degenerate.groupby(METHOD_KEY).image_id.nunique().to_dict() if len(degenerate) else {}
    old, old_gaps = {}, {}
    if previous is not None and len(previous):
        old = {tuple(r[:len(GROUP)]): (r[-2], r[-1]) for r in
               previous[[*GROUP, "ci_low", "ci_high"]].itertuples(index=False)}
        kept = [c for c in (*GAP_COLUMNS, *GAP_CI_COLUMNS) if c in previous.columns]
        if set(GAP_COLUMNS) <= set(kept):
            old_gaps = {tuple(r[:len(GROUP)]): dict(zip(kept, (None if x != x else x for x in r[len(GROUP):])))
                        for r in previous[[*GROUP, *kept]].itertuples(index=False)}

    pairs, common = [], {}
    for (metric, mver, mparams, region), g in df.groupby(["metric", "metric_version", "metric_params", "region"]):
        wide = g.pivot_table(index="image_id", columns="label", values="value", aggfunc="first", dropna=False)
        wide = wide.loc[shared_images(wide)]
        common[(metric, mver, mparams, region)] = wide
        if pairwise_metrics is not None and metric not in pairwise_metrics:
            continue
        labels = sorted(wide.columns)
        family = []
        for a, b in itertools.combinations(labels, 2):
            n, diff, p = wilcoxon_pair(wide[a].to_numpy(), wide[b].to_numpy())
            family.append([dataset_id, model_id, metric, mver, mparams, region, a, b, n, diff, p])
        adjusted = holm([f[-1] for f in family])
        for f, ph in zip(family, adjusted):
            pairs.append((*f, float(ph)))
    pairwise = pd.DataFrame(pairs, columns=PAIRWISE_COLUMNS)

    rows = []
    for key, g in df.groupby(GROUP, sort=True, dropna=False):
        v = g["value"].to_numpy(dtype=np.float64)
        defined = v[~np.isnan(v)]
        if methods is None or (key[0], key[2]) in methods or key not in old:
            lo, hi = bootstrap_ci(defined, seed=seed)
        else:
            lo, hi = old[key]
        degenerate_here = sum((*key[:3], i) in bad for i, x in zip(g["image_id"], v) if np.isnan(x))
        here = pairwise[(pairwise.metric == key[3]) & (pairwise.metric_version == key[4])
                        & (pairwise.metric_params == key[5]) & (pairwise.region == key[6])]
        label = method_label(key[0], key[2])
        labels = set(g["label"]) | set(here.method_a) | set(here.method_b)
        shared = common[key[3:]]
        if pairwise_metrics is not None and key[3] not in pairwise_metrics:  # not tested in this call
            kept = old_gaps.get(key, {})
            gaps, gap_cis = [kept.get(c) for c in GAP_COLUMNS], [kept.get(c) for c in GAP_CI_COLUMNS]
        else:
            bases = [baseline_label(labels, kind) for kind in ("random", "centre")]
            gaps = [x for base in bases for x in _gap(here, label, base)]
            gap_cis = [x for base in bases for x in _gap_ci(shared, label, base, seed)]
        on_shared = shared[label].dropna() if label in shared else pd.Series(dtype="float64")
        rows.append((dataset_id, model_id, *key, int(len(defined)), int(len(v) - len(defined) - degenerate_here),
                     float(defined.mean()) if len(defined) else None, lo, hi, int(n_bad.get(key[:3], 0)),
                     substrate_of(key[3], key[5]), *gaps, int(len(shared)),
                     float(on_shared.mean()) if len(on_shared) else None, *gap_cis))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS), pairwise
