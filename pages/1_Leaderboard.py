"""Leaderboard: method x model table of one metric's mean per dataset and region, plus a bar chart."""
from __future__ import annotations

import plotly.express as px
import streamlit as st

from engine.store.cache import call, db_state
from engine.store.summaries import method_label
from engine.widgets import url_selectbox

st.set_page_config(page_title="Leaderboard", layout="wide")
st.title("Leaderboard")

path, mtime = db_state()
if mtime is None:
    st.info(f"No usable results database at `{path}`. Create one with `.venv/bin/python -m engine demo`.")
    st.stop()

opts = call("score_options", path, mtime)
if opts.empty:
    st.info("The database holds no scores yet. Run `.venv/bin/python -m engine demo` to add some.")
    st.stop()


def pick(label: str, values, key: str, prefer: str | None = None):
    return url_selectbox(label, values, key, "lb_", prefer=prefer)


datasets = opts[["dataset_id", "dataset"]].drop_duplicates()
ds_label = {r.dataset_id: f"{r.dataset} ({r.dataset_id.split('@')[1]})" for r in datasets.itertuples()}
dataset_id = pick("Dataset", list(ds_label), "dataset")
sub = opts[opts.dataset_id == dataset_id]
metric = pick("Metric", sorted(sub.metric.unique()), "metric", prefer="pointing_game")
region = pick("Region", sorted(sub[sub.metric == metric].region.unique()), "region", prefer="mask")

board = call("leaderboard", path, mtime, dataset_id, metric, region)
pairs = call("pairwise", path, mtime, dataset_id, metric, region)
st.caption(f"{ds_label[dataset_id]} · metric **{metric}** · region **{region}** · mean over test images with "
           f"95 % bootstrap CI; n = images scored; rank within each model; p = Wilcoxon signed-rank vs the "
           f"model's best method, Holm-adjusted over all method pairs of that model")


board["label"] = [method_label(m, p) for m, p in zip(board["method"], board["method_params"])]


def vs_best(row) -> float | None:
    """Holm-adjusted p of this method against its model's rank-1 method (looked up, not computed)."""
    best = board[(board.model_id == row.model_id) & (board["rank"] == 1)]["label"]
    if best.empty or row.label in set(best):
        return None
    b = best.iloc[0]
    hit = pairs[(pairs.model_id == row.model_id) & (((pairs.method_a == b) & (pairs.method_b == row.label)) |
                                                     ((pairs.method_b == b) & (pairs.method_a == row.label)))]
    return None if hit.empty else float(hit.p_holm.iloc[0])


p_best = [vs_best(r) for r in board.itertuples()]
board["p vs best (Holm)"] = ["best" if p is None else "n/a" if p != p else f"{p:.2g}" for p in p_best]
board["signif"] = ["" if p is None or p != p else "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05
                   else "n.s." for p in p_best]

table = board.pivot_table(index="method", columns="model_id", values="mean")
st.subheader("Mean per method × model")
st.dataframe(table.style.format("{:.3f}"), width="stretch")

st.subheader("Detail")
shown = board[["model_id", "rank", "label", "mean", "ci_low", "ci_high", "n", "n_undefined", "p vs best (Holm)",
               "signif"]].rename(columns={"label": "method"}).round({"mean": 3, "ci_low": 3, "ci_high": 3})
st.dataframe(shown, hide_index=True, width="stretch")
st.download_button("Download this table (CSV)", shown.to_csv(index=False).encode(),
                   file_name=f"leaderboard_{metric}_{region}.csv", mime="text/csv")

plot = board.assign(err_hi=board.ci_high - board["mean"], err_lo=board["mean"] - board.ci_low)
n_max = int(board["n"].max()) if len(board) else 0
fig = px.bar(plot, x="method", y="mean", color="model_id", barmode="group", error_y="err_hi", error_y_minus="err_lo",
             labels={"mean": f"{metric} (mean, {region})", "method": "method", "model_id": "model"},
             title=f"{metric} on {region} regions: mean with 95 % bootstrap CI, n ≤ {n_max} images per bar")
fig.update_yaxes(range=[0, 1])
st.plotly_chart(fig, width="stretch")

models_here = sorted(board.model_id.unique())
if models_here:
    with st.expander("Do the metrics and the region types agree? (per model)"):
        mid = st.selectbox("Model", models_here, key="lb_agree_model")
        st.caption(f"Spearman correlation between metrics across methods (method means, region {region} plus "
                   f"faithfulness; deletion negated so higher = better); chance baselines excluded")
        st.dataframe(call("metric_agreement", path, mtime, dataset_id, mid, region).style.format("{:.2f}"),
                     width="stretch")
        regions_here = set(sub.region.unique())
        if {"box", "mask"} <= regions_here and metric in set(sub[sub.region == "box"].metric):
            ranks, rho = call("region_agreement", path, mtime, dataset_id, mid, metric)
            st.caption(f"{metric}: method ranking on boxes vs masks, Spearman ρ = {rho:.2f}")
            st.dataframe(ranks, width="stretch")
