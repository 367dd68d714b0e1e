"""The Compare page's tables, as pure functions of the rows its queries return (the page draws them)."""
from __future__ import annotations

import pandas as pd

DEPTH_METRICS = ("pointing_game", "iou_top5")
PRETRAINING_COLUMNS = ("test_accuracy", "test_balanced_accuracy", "val_accuracy", "pretrain_steps",
                       "pretrain_final_loss", "pretrain_collapse")


def strategy_means(df: pd.DataFrame) -> pd.DataFrame:
    """Per (pretraining strategy, method) of :func:`.queries_compare.strategy_comparison` rows (labelled):
    the mean of its models' mean scores, the lowest (``lo``) and highest (``hi``) model mean, the models and
    the images summed over them (``n``)."""
    return df.groupby(["strategy", "method"]).agg(mean=("mean", "mean"), lo=("mean", "min"), hi=("mean", "max"),
                                                  models=("model_id", "nunique"), n=("n", "sum")).reset_index()


def strategy_models(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (strategy, model) of the same rows: the model's accuracies and pretraining record."""
    return df.groupby(["strategy", "model_id"], dropna=False).agg(
        **{c: (c, "first") for c in PRETRAINING_COLUMNS}).reset_index()


def strategy_dataset(models: pd.DataFrame) -> str | None:
    """The dataset the Compare page opens on: the one whose fine-tuned models have the most distinct
    pretraining strategies (:func:`.queries_compare.model_options` rows), the first on a tie; None
    without rows."""
    if models.empty:
        return None
    tuned = models[models["fine_tuning"] == "trained"] if "fine_tuning" in models else models
    if tuned.empty or "pretraining" not in tuned:
        return str(models["dataset_id"].iloc[0])
    counts = tuned.groupby("dataset_id", sort=True)["pretraining"].nunique()
    return str(counts.idxmax())


def depth_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The depth-ablation rows to plot: the localisation metrics (:data:`DEPTH_METRICS`) when there are any,
    else every metric."""
    keep = df.metric.isin(DEPTH_METRICS)
    return df[keep] if keep.any() else df


def mprt_verdicts(curves: pd.DataFrame, survives: float) -> pd.DataFrame:
    """Per method of labelled :func:`.queries_compare.mprt_curves` rows: the mean Spearman correlation with
    the original map after the last randomisation step and the verdict: ``fails`` where it stays above
    ``survives`` (the map survives randomising the model, so it does not depend on it; Adebayo et al. 2018,
    the rule of :mod:`engine.metrics.sanity`), ``passes`` otherwise, ``undefined`` where the maps were constant."""
    if curves.empty:
        return pd.DataFrame(columns=["method", "last_step", "images", "final_spearman", "verdict"])
    last = curves.sort_values("step").groupby("method", sort=True).tail(1)
    rho = last["mean_spearman"].astype(float)
    verdict = ["undefined (constant maps)" if r != r else "fails: survives randomisation" if r > survives
               else "passes" for r in rho]
    return pd.DataFrame({"method": last["method"].to_numpy(), "last_step": last["step"].to_numpy(),
                         "images": last["images"].to_numpy(), "final_spearman": rho.round(3).to_numpy(),
                         "verdict": verdict}).sort_values("method").reset_index(drop=True)
