"""Guards that say what a reading is worth (docs/metrics.md, "Guards"): pure functions, computed at ingest.

* Model quality -- test accuracy and balanced accuracy with 95 % percentile bootstrap CIs over images
  (seeded, 2000 resamples), chance levels (the majority-class share for accuracy; 1/K for balanced
  accuracy, K = classes present among the test labels: what any classifier blind to the image reaches),
  and the paired bootstrap difference of balanced accuracy to the model's random-weights twin.
  **Near chance**: the balanced-accuracy CI reaches down to 1/K (``ci_low <= 1/K``), or it is undefined
  (fewer than 2 test images): the model's explanations explain noise.
* Degenerate maps -- a map with a NaN / inf value (``nonfinite``), all zeros (``zero``) or one value
  everywhere (``constant``: max - min <= 1e-6 x max(|max|, |min|)) ranks no pixel above another.  It is
  stored for display, never scored (its scores are NULL, not chance) and counted (``n_degenerate``).
* Baselines -- a method *beats* a baseline map when the paired Wilcoxon test against it is significant
  after Holm (p < 0.05) and the mean paired difference points the better way;
  :func:`engine.common.verdicts.headline` says which methods beat both the random and the centre map.
* Centre coverage -- whether a region covers the image centre (any of the 1, 2 or 4 pixels touching the
  centre point), to say how strong the centre prior is on a dataset.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch

from ..common.verdicts import is_near_chance

N_RESAMPLES = 2000
CONSTANT_RTOL = 1e-6
QUALITY_COLUMNS = ["dataset_id", "model_id", "n", "n_classes", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
                   "balanced_accuracy", "balanced_accuracy_ci_low", "balanced_accuracy_ci_high", "chance_majority",
                   "chance_uniform", "twin_model_id", "twin_diff", "twin_diff_ci_low", "twin_diff_ci_high",
                   "near_chance"]


# -- model quality ------------------------------------------------------------------------------

def _acc_bacc(labels: np.ndarray, correct: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and balanced accuracy of each row of (R, n) label / correctness arrays; balanced accuracy
    averages the recall of the classes present in that row (NaN for an empty row)."""
    acc = correct.mean(axis=1)
    recalls = []
    for k in classes:
        is_k = labels == k
        den = is_k.sum(axis=1)
        num = (is_k & correct).sum(axis=1)
        recalls.append(np.where(den > 0, num / np.maximum(den, 1), np.nan))
    with warnings.catch_warnings():  # a resample without any class present: NaN, dropped from the CI
        warnings.simplefilter("ignore", RuntimeWarning)
        bacc = np.nanmean(np.stack(recalls), axis=0)
    return acc, bacc


def _percentile_ci(samples: np.ndarray) -> tuple[float, float]:
    s = samples[~np.isnan(samples)]
    if len(s) == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(s, [2.5, 97.5])
    return float(lo), float(hi)


def chance_levels(labels) -> tuple[float, float]:
    """(majority-class share, 1/K with K = classes present) of the true labels; NaN when empty."""
    y = np.asarray(labels, np.int64)
    if len(y) == 0:
        return float("nan"), float("nan")
    counts = np.bincount(y)
    present = int((counts > 0).sum())
    return float(counts.max() / len(y)), 1.0 / present


def accuracy_with_ci(labels, preds, n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict:
    """Accuracy and balanced accuracy with 95 % percentile bootstrap CIs (images resampled, seeded)."""
    y, p = np.asarray(labels, np.int64), np.asarray(preds, np.int64)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} predictions")
    nan = float("nan")
    if len(y) == 0:
        return {"n": 0, "accuracy": nan, "accuracy_ci": (nan, nan), "balanced_accuracy": nan,
                "balanced_accuracy_ci": (nan, nan)}
    classes = np.unique(y)
    acc, bacc = _acc_bacc(y[None], (y == p)[None], classes)
    out = {"n": int(len(y)), "accuracy": float(acc[0]), "balanced_accuracy": float(bacc[0])}
    if len(y) < 2:
        return {**out, "accuracy_ci": (nan, nan), "balanced_accuracy_ci": (nan, nan)}
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n_resamples, len(y)))
    a, b = _acc_bacc(y[idx], (y == p)[idx], classes)
    return {**out, "accuracy_ci": _percentile_ci(a), "balanced_accuracy_ci": _percentile_ci(b)}


def paired_difference(labels, preds, other_preds, n_resamples: int = N_RESAMPLES, seed: int = 0
                      ) -> tuple[float, float, float]:
    """Balanced accuracy of ``preds`` minus that of ``other_preds`` on the same images, with a 95 % paired
    percentile bootstrap CI (the same resampled images for both)."""
    y = np.asarray(labels, np.int64)
    p, q = np.asarray(preds, np.int64), np.asarray(other_preds, np.int64)
    if not len(y) == len(p) == len(q):
        raise ValueError("labels and both prediction arrays must have the same length")
    if len(y) < 2:
        return (float("nan"),) * 3
    classes = np.unique(y)
    d0 = _acc_bacc(y[None], (y == p)[None], classes)[1] - _acc_bacc(y[None], (y == q)[None], classes)[1]
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n_resamples, len(y)))
    d = _acc_bacc(y[idx], (y == p)[idx], classes)[1] - _acc_bacc(y[idx], (y == q)[idx], classes)[1]
    lo, hi = _percentile_ci(d)
    return float(d0[0]), lo, hi


def random_twin(models: pd.DataFrame, model_id: str) -> str | None:
    """The random-weights twin of a model: same dataset and same architecture name, ``init = 'random'``
    (the first by id when there are several); None for a random-weights model itself or without one."""
    me = models[models.model_id == model_id]
    if me.empty or me["init"].iloc[0] == "random":
        return None
    twins = models[(models.dataset_id == me.dataset_id.iloc[0]) & (models.name == me.name.iloc[0])
                   & (models["init"] == "random") & (models.model_id != model_id)].sort_values("model_id")
    return None if twins.empty else str(twins.model_id.iloc[0])


def model_quality(predictions: pd.DataFrame, models: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``model_quality`` rows (``QUALITY_COLUMNS``) of every model of ``models`` (dataset_id, model_id, name,
    init) from its test-split ``predictions`` (dataset_id, model_id, image_id, label, pred)."""
    rows = []
    for m in models.sort_values(["dataset_id", "model_id"]).itertuples():
        mine = predictions[(predictions.dataset_id == m.dataset_id) & (predictions.model_id == m.model_id)]
        mine = mine.sort_values("image_id")
        if mine.empty:
            continue
        y, p = mine.label.to_numpy(np.int64), mine.pred.to_numpy(np.int64)
        q = accuracy_with_ci(y, p, seed=seed)
        majority, uniform = chance_levels(y)
        twin = random_twin(models, m.model_id)
        diff = (float("nan"),) * 3
        if twin is not None:
            other = predictions[(predictions.dataset_id == m.dataset_id) & (predictions.model_id == twin)]
            both = mine.merge(other[["image_id", "pred"]], on="image_id", suffixes=("", "_twin"))
            if len(both):
                diff = paired_difference(both.label, both.pred, both.pred_twin, seed=seed)
        rows.append((m.dataset_id, m.model_id, q["n"], int(len(np.unique(y))), q["accuracy"], *q["accuracy_ci"],
                     q["balanced_accuracy"], *q["balanced_accuracy_ci"], majority, uniform, twin, *diff,
                     is_near_chance(q["balanced_accuracy_ci"][0], uniform)))
    return _nulls(pd.DataFrame(rows, columns=QUALITY_COLUMNS))


def _nulls(df: pd.DataFrame) -> pd.DataFrame:
    """NaN -> None in float columns (stored as NULL)."""
    return df.astype(object).where(df.notna(), None)


# -- degenerate maps ----------------------------------------------------------------------------

def degenerate_kinds(maps) -> list[str | None]:
    """Per map of a (B, ...) batch: 'nonfinite', 'zero', 'constant' or None (an informative map)."""
    m = torch.as_tensor(maps).detach().flatten(1).double().cpu()
    out: list[str | None] = []
    for row in m:
        if not torch.isfinite(row).all():
            out.append("nonfinite")
            continue
        hi, lo = float(row.max()), float(row.min())
        if hi == 0.0 and lo == 0.0:
            out.append("zero")
        elif hi - lo <= CONSTANT_RTOL * max(abs(hi), abs(lo)):
            out.append("constant")
        else:
            out.append(None)
    return out


# -- centre coverage ----------------------------------------------------------------------------

def centre_pixels(h: int, w: int) -> tuple[list[int], list[int]]:
    """Rows and columns of the pixels touching the image centre point (1, 2 or 4 pixels)."""
    rows = [h // 2] if h % 2 else [h // 2 - 1, h // 2]
    cols = [w // 2] if w % 2 else [w // 2 - 1, w // 2]
    return rows, cols


def centre_coverage(regions) -> tuple[np.ndarray, np.ndarray]:
    """(covers the centre (B,) bool, area fraction (B,) float64) of a (B, H, W) bool region batch."""
    r = torch.as_tensor(regions).bool()
    if r.ndim != 3:
        raise ValueError(f"regions must be (B, H, W), got {tuple(r.shape)}")
    rows, cols = centre_pixels(r.shape[1], r.shape[2])
    covers = r[:, rows][:, :, cols].flatten(1).any(1).numpy()
    area = r.flatten(1).double().mean(1).numpy()
    return covers, area
