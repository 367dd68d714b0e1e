"""Leaderboard: method x model table of one metric's mean per dataset and region, plus a bar chart."""
from __future__ import annotations

import plotly.express as px
import streamlit as st

from engine.store.cache import call, db_state

st.set_page_config(page_title="Leaderboard", layout="wide")
st.title("Leaderboard")

path, mtime = db_state()
if mtime is None:
    st.info(f"No results database at `{path}`. Create one with `.venv/bin/python -m engine demo`.")
    st.stop()

opts = call("score_options", path, mtime)
if opts.empty:
    st.info("The database holds no scores yet. Run `.venv/bin/python -m engine demo` to add some.")
    st.stop()


def pick(label: str, values: list, key: str, prefer: str | None = None):
    """A selectbox whose choice lives in the URL (st.query_params), so views can be shared."""
    values = list(values)
    current = st.query_params.get(key)
    index = values.index(current) if current in values else values.index(prefer) if prefer in values else 0
    choice = st.sidebar.selectbox(label, values, index=index, key=f"lb_{key}")
    st.query_params[key] = choice
    return choice


datasets = opts[["dataset_id", "dataset"]].drop_duplicates()
ds_label = {r.dataset_id: f"{r.dataset} ({r.dataset_id.split('@')[1]})" for r in datasets.itertuples()}
dataset_id = pick("Dataset", list(ds_label), "dataset")
sub = opts[opts.dataset_id == dataset_id]
metric = pick("Metric", sorted(sub.metric.unique()), "metric", prefer="pointing_game")
region = pick("Region", sorted(sub[sub.metric == metric].region.unique()), "region", prefer="mask")

board = call("leaderboard", path, mtime, dataset_id, metric, region)
st.caption(f"{ds_label[dataset_id]} · metric **{metric}** · region **{region}** · "
           f"mean over test images (± standard error); n = images scored")

table = board.pivot_table(index="method", columns="model_id", values="mean")
st.subheader("Mean per method × model")
st.dataframe(table.style.format("{:.3f}"), width="stretch")

st.subheader("Detail")
st.dataframe(board[["method", "model_id", "init", "mean", "sem", "n", "n_undefined"]], hide_index=True,
             width="stretch")

fig = px.bar(board, x="method", y="mean", color="model_id", barmode="group", error_y="sem",
             labels={"mean": f"{metric} (mean, {region})", "method": "method", "model_id": "model"},
             title=f"{metric} on {region} regions, n = {int(board['n'].max()) if len(board) else 0} images per bar")
fig.update_yaxes(range=[0, 1])
st.plotly_chart(fig, width="stretch")
