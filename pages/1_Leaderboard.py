"""Leaderboard: method x model (or pretraining strategy / architecture) table of one metric's mean with
95 % CI, n, ranks, significance and the random baseline; bar chart; CSV / Parquet of what is shown."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from engine.dashboard.cache import call
from engine.dashboard import method_label
from engine.dashboard.safe import csv_bytes, md, plotly_frame, plotly_text
from engine.dashboard.widgets import open_page, show_table, url_selectbox

px.defaults.color_discrete_sequence = px.colors.qualitative.Alphabet  # 26 distinct colours: one per method

path, mtime, opts = open_page("Leaderboard", "Leaderboard", "score_options", "scores")


def pick(label: str, values, key: str, prefer: str | None = None, fmt=str):
    return url_selectbox(label, values, key, "lb_", prefer=prefer, fmt=fmt)


datasets = opts[["dataset_id", "dataset"]].drop_duplicates()
ds_label = {r.dataset_id: f"{r.dataset} ({r.dataset_id.split('@')[-1]})" for r in datasets.itertuples()}
dataset_id = pick("Dataset", list(ds_label), "dataset", fmt=lambda d: ds_label[d])
sub = opts[opts.dataset_id == dataset_id]
metric = pick("Metric", sorted(sub.metric.unique()), "metric", prefer="pointing_game")
region = pick("Region", sorted(sub[sub.metric == metric].region.unique()), "region", prefer="mask")
GROUPS = {"model": "model", "strategy": "pretraining strategy", "arch": "architecture"}
group_key = pick("Group models by", list(GROUPS), "group", fmt=GROUPS.get)
group, gcol = GROUPS[group_key], "model_id" if group_key == "model" else group_key

board, pairs = call("leaderboard_view", path, mtime, dataset_id, metric, region)
board = board.copy()  # the cached frame stays as it was
board["label"] = [method_label(m, p) for m, p in zip(board["method"], board["method_params"])]
board["strategy"] = board["strategy"].fillna(board["init"]).fillna("unknown")
board["arch"] = board["arch"].fillna(board["model"]).fillna("unknown")
board["baseline"] = board["method"].str.startswith("baseline_")
higher = bool(board["higher_is_better"].iloc[0]) if len(board) else True


def rank_within(df: pd.DataFrame, by: str, value: str = "mean") -> pd.Series:
    """Rank of each method inside its group (1 = best), chance baselines not ranked."""
    real = df[~df["baseline"]]
    r = real.groupby(by)[value].rank(ascending=not higher, method="min")
    return r.reindex(df.index)


def vs_best(row) -> float | None:
    """Holm-adjusted p of this method against its model's rank-1 method (looked up, not computed)."""
    best = board[(board.model_id == row.model_id) & (board["rank"] == 1)]["label"]
    if best.empty or row.label in set(best):
        return None
    b = best.iloc[0]
    hit = pairs[(pairs.model_id == row.model_id) & (((pairs.method_a == b) & (pairs.method_b == row.label)) |
                                                     ((pairs.method_b == b) & (pairs.method_a == row.label)))]
    return None if hit.empty else float(hit.p_holm.iloc[0])


def stars(p: float | None) -> str:
    return "" if p is None or p != p else "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "n.s."


def random_gap(df: pd.DataFrame, by: str) -> pd.Series:
    """Mean minus the random baseline's mean of the same group (NaN where no baseline was run)."""
    base = df[df.method == "baseline_random"].groupby(by)["mean"].mean()
    return df["mean"] - df[by].map(base)


board["rank"] = rank_within(board, "model_id")
if group == "model":
    p_best = [None if r.baseline else vs_best(r) for r in board.itertuples()]
    board["p vs best (Holm)"] = ["" if b else "best" if p is None else "n/a" if p != p else f"{p:.2g}"
                                 for p, b in zip(p_best, board["baseline"])]
    board["signif"] = [stars(p) for p in p_best]
    board["vs random"] = random_gap(board, "model_id")
    shown = board[["model_id", "strategy", "arch", "rank", "label", "mean", "ci_low", "ci_high", "n", "n_undefined",
                   "vs random", "p vs best (Holm)", "signif", "baseline"]]
    caption = ("mean over test images with 95 % bootstrap CI; n = images scored; rank within each model (baselines "
               "not ranked); p = Wilcoxon signed-rank vs the model's best method, Holm-adjusted over all method "
               "pairs of that model (*** p < 0.001, ** < 0.01, * < 0.05); vs random = mean minus the random-map "
               "baseline's mean")
else:
    agg = board.groupby([gcol, "label", "method"], sort=True).agg(
        models=("model_id", "nunique"), mean=("mean", "mean"), min_model_mean=("mean", "min"),
        max_model_mean=("mean", "max"), n=("n", "sum"), baseline=("baseline", "first")).reset_index()
    agg["rank"] = rank_within(agg, gcol)
    agg["vs random"] = random_gap(agg, gcol)
    shown = agg[[gcol, "rank", "label", "mean", "min_model_mean", "max_model_mean", "models", "n", "vs random",
                 "baseline"]]
    caption = (f"per {group}: mean of its models' mean scores, the lowest and highest model mean, models and images "
               f"scored (n, summed); rank within each {group} (baselines not ranked); paired tests are per model — "
               f"group by model to see them")
shown = shown.rename(columns={"label": "method"}).sort_values([gcol, "baseline", "rank"]).reset_index(drop=True)
shown = shown.round({c: 3 for c in shown.columns if shown[c].dtype.kind == "f" and c != "rank"})
st.caption(f"{md(ds_label[dataset_id])} · metric **{md(metric)}** ({'higher' if higher else 'lower'} is better) · "
           f"region **{md(region)}** · grouped by **{group}** · {caption}")
if not board["baseline"].any():
    st.caption("No random baseline in this database (run the `baseline_random` method to get the chance row).")

st.subheader(f"Mean per method × {group}")
table = shown.pivot_table(index="method", columns=gcol, values="mean")
show_table(table, "{:.3f}")

st.subheader("Detail")
shown = shown.drop(columns=[c for c in ("vs random",) if shown[c].isna().all()])
show_table(shown, {"rank": "{:.0f}"}, hide_index=True,
           column_config={"baseline": st.column_config.CheckboxColumn("chance baseline")})
stem = f"leaderboard_{metric}_{region}_by_{gcol}"
buf = io.BytesIO()
shown.to_parquet(buf, index=False)
c1, c2 = st.columns(2)
c1.download_button("Download this table (CSV)", csv_bytes(shown), file_name=f"{stem}.csv",
                   mime="text/csv")
c2.download_button("Download this table (Parquet)", buf.getvalue(), file_name=f"{stem}.parquet",
                   mime="application/vnd.apache.parquet")

plot = shown.copy()
if group == "model":
    plot = plot.assign(err_hi=plot.ci_high - plot["mean"], err_lo=plot["mean"] - plot.ci_low)
    err = {"error_y": "err_hi", "error_y_minus": "err_lo"}
    what = "mean with 95 % bootstrap CI"
else:
    plot = plot.assign(err_hi=plot.max_model_mean - plot["mean"], err_lo=plot["mean"] - plot.min_model_mean)
    err = {"error_y": "err_hi", "error_y_minus": "err_lo"}
    what = "mean of model means, bars from lowest to highest model"
n_max = int(shown["n"].max()) if len(shown) else 0
fig = px.bar(plotly_frame(plot), x="method", y="mean", color=gcol, barmode="group", **err,
             text="signif" if "signif" in plot else None,
             labels={"mean": plotly_text(f"{metric} ({region}), score 0–1"), "method": "method", gcol: group},
             title=plotly_text(f"{metric} on {region} regions: {what}; n ≤ {n_max} images per bar")
                   + ("; marks: vs the model's best (Holm)" if "signif" in plot else ""))
fig.update_traces(textposition="outside", cliponaxis=False)
if np.isfinite(plot["mean"]).all() and plot["mean"].between(0, 1).all():
    fig.update_yaxes(range=[0, 1])
st.plotly_chart(fig, width="stretch")

models_here = sorted(board.model_id.unique())
if models_here:
    with st.expander("Do the metrics and the region types agree? (per model; more on the Compare page)"):
        mid = url_selectbox("Model", models_here, "agree_model", "lb_", where=st)
        st.caption(f"Spearman correlation between metrics across methods (method means, region {md(region)} plus "
                   f"faithfulness; deletion negated so higher = better); chance baselines excluded")
        show_table(call("metric_agreement", path, mtime, dataset_id, mid, region), "{:.2f}")
