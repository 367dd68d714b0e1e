"""Dashboard entry (overview): what is in the results database and how to add to it."""
from __future__ import annotations

import streamlit as st

from engine.store.cache import call, db_state

st.set_page_config(page_title="ViT heatmaps vs. ground truth", layout="wide")
st.title("Do the heatmaps point where the disease is?")

path, mtime = db_state()
st.caption(f"Results database: `{path}` (set `XAI_DB` to use another)")

if mtime is None:
    st.info("No results database yet. Create one with the embedded demo:\n\n"
            "`.venv/bin/python -m engine demo` (or `--quick` for a small one), then reload this page.")
    st.stop()

counts = call("table_counts", path, mtime)
cols = st.columns(4)
for col, table in zip(cols, ["datasets", "models", "explanations", "scores"]):
    n = int(counts.loc[counts.table_name == table, "rows"].iloc[0])
    col.metric(table.capitalize(), f"{n:,}")

st.subheader("Datasets")
st.dataframe(call("datasets", path, mtime).drop(columns=["root"]), hide_index=True, width="stretch")
st.subheader("Models")
st.dataframe(call("models", path, mtime), hide_index=True, width="stretch")
st.subheader("Methods × metrics (all models, mean over images)")
st.dataframe(call("method_summary", path, mtime), hide_index=True, width="stretch")
st.subheader("Runs")
st.dataframe(call("runs", path, mtime), hide_index=True, width="stretch")

st.markdown("**Next:** the *Leaderboard* page ranks methods per model; the *Gallery* shows each map "
            "over its image with the ground-truth outline. New results: `python -m engine demo --db PATH`.")
