"""Dashboard entry (overview): what is in the results database and how to add to it."""
from __future__ import annotations

import streamlit as st

from engine.dashboard.cache import call, db_state
from engine.dashboard.live import database_message, live_run
from engine.dashboard.widgets import live_panel, no_database, show_table

st.set_page_config(page_title="ViT heatmaps vs. ground truth", layout="wide")
st.title("Do the heatmaps point where the disease is?")

path, mtime = db_state()
st.caption(f"Results database: `{path}` (set `XAI_DB` to use another)")

if mtime is None:
    no_database(path)
view = live_run(path)
if view is not None and view.running:
    live_panel(path)

counts = dict(call("table_counts", path, mtime).itertuples(index=False))
cols = st.columns(5)
for col, table in zip(cols, ["datasets", "models", "explanations", "scores", "failures"]):
    col.metric(table.capitalize(), f"{int(counts.get(table, 0)):,}")

message = database_message(path, True, counts.get("scores", 0) > 0, view)
if message:
    st.info(message)

st.subheader("Datasets")
st.dataframe(call("datasets", path, mtime).drop(columns=["root"]), hide_index=True, width="stretch")

st.subheader("Models")
st.caption("Test-split classification quality: accuracy, balanced accuracy, macro-F1 and macro one-vs-rest AUROC "
           "(– where the run did not record it)")
models = call("models", path, mtime)
show_table(models, hide_index=True)

st.subheader("Methods × metrics")
st.caption("Per method, metric and region: models scored, images scored (n, summed over models) and the mean "
           "of the models' mean scores")
st.dataframe(call("method_summary", path, mtime), hide_index=True, width="stretch",
             column_config={"mean_of_model_means": st.column_config.NumberColumn(format="%.3f")})

st.subheader("Last runs")
runs = call("runs", path, mtime, 10)
if runs.empty:
    st.caption("No runs recorded.")
else:
    show_table(runs, {"seconds": "{:.0f}"}, hide_index=True)
n_fail = int(counts.get("failures", 0))
if n_fail:
    st.warning(f"{n_fail:,} failed items recorded — the *Runs* page lists them with their reasons.")

st.subheader("Start a run")
st.markdown("""
- Embedded demo (synthetic blood smears, fine-tuned and random ViT, every method and metric):
  `.venv/bin/python -m engine demo` — add `--quick` for a small one, `--db PATH` to write elsewhere.
- Your own study: `.venv/bin/python -m engine run EXPERIMENT.toml`.
- Point the dashboard at another database: `XAI_DB=PATH .venv/bin/streamlit run app.py`.

**Pages:** *Leaderboard* ranks methods per model with confidence intervals; *Gallery* shows every map over
its image with the ground-truth outline (click *details* for all methods of one image); *Compare* holds the
studies' comparisons (pretraining, metric agreement, boxes vs masks, depth, sanity, faithfulness curves,
confounders); *Runs* lists run history, jobs and failures.
""")
