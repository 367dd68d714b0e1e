"""Statistics that make a leaderboard worth citing: bootstrap CIs, paired tests, Holm correction.

* :func:`bootstrap_ci` -- 95 % BCa bootstrap interval of the mean over images
  (``scipy.stats.bootstrap``, seeded, 2000 resamples).  A sample whose values are all equal has the
  degenerate interval ``(v, v)``; fewer than 2 values give NaN.
* :func:`wilcoxon_pair` -- Wilcoxon signed-rank test of two methods scored on the same images
  (pairs with a missing score dropped; zero differences dropped, scipy's ``zero_method='wilcox'``;
  all-zero differences give p = 1).
* :func:`holm` -- Holm-Bonferroni step-down adjustment of a family of p-values.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import stats


def bootstrap_ci(values, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    if np.all(v == v[0]):
        return float(v[0]), float(v[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                              method="BCa", random_state=np.random.default_rng(seed), vectorized=True)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if np.isnan(lo) or np.isnan(hi):  # BCa undefined (e.g. extreme skew): percentile interval instead
        res = stats.bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                              method="percentile", random_state=np.random.default_rng(seed), vectorized=True)
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return lo, hi


TIE_TOLERANCE = 1e-12  # |a - b| at most this (relative, scores above 1 in size) is a tie in the paired test


def wilcoxon_pair(a, b) -> tuple[int, float, float]:
    """(n pairs, mean difference a - b, two-sided p) over images scored by both."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = int(len(a))
    if n == 0:
        return 0, float("nan"), float("nan")
    d = a - b
    # float noise is a tie, not a difference: two rules that agree up to rounding (a baseline against another,
    # a similarity computed twice) must not read as one beating the other
    d[np.abs(d) <= TIE_TOLERANCE * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))] = 0.0
    if np.all(d == 0):
        return n, 0.0, 1.0
    p = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return n, float(d.mean()), p


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values (NaN stays NaN and is not counted in the family)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    idx = np.where(~np.isnan(p))[0]
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out
