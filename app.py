"""Dashboard entry: the navigation (Overview first, then the files of ``pages/``) and the Overview page:
what is in the results database, the run under way, and how to add to it."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine.dashboard import (
    RUN_TIMES,
    DamagedDatabase,
    database_message,
    db_state,
    live_panel,
    live_run,
    md,
    merge_coinciding,
    no_database,
    shortcut_notes,
    show_table,
    start_help,
)

PAGES_HELP = """
**Pages:** *Leaderboard* ranks methods per model with confidence intervals; *Gallery* shows every map over
its image with the ground-truth outline (click *details* for all methods of one image); *Compare* holds the
studies' comparisons (pretraining, metric agreement, boxes vs masks, depth, sanity, faithfulness curves,
confounders); *Runs* lists run history, jobs and failures.
"""


def overview() -> None:
    """The first page (named *Overview* in the sidebar, at the app's root URL)."""
    st.title("Do the heatmaps point where the disease is?")

    db = db_state()
    st.caption(f"Results database: {md(db.path)} (set `XAI_DB` to use another)")

    if not db.ready:
        no_database(db.path)
    view = live_run(db.path)
    if view is not None and view.running:
        live_panel(db.path)
    elif view is not None and view.resume:  # interrupted, failed or vanished: how to continue it
        st.warning(view.resume)

    counts = dict(db.table_counts().itertuples(index=False))
    cols = st.columns(5)
    for col, table in zip(cols, ["datasets", "models", "explanations", "scores", "failures"]):
        col.metric(table.capitalize(), f"{int(counts.get(table, 0)):,}")

    message = database_message(db.path, True, counts.get("scores", 0) > 0, view)
    if message:
        st.info(message)

    st.subheader("Datasets")
    datasets = db.datasets()
    st.dataframe(datasets.drop(columns=["root"]), hide_index=True, width="stretch")
    for dataset_id in datasets["dataset_id"]:  # metadata alone predicting the label (docs/datasets.md)
        shortcut_notes(db, dataset_id)

    st.subheader("Models")
    st.caption("Test-split classification quality: accuracy, balanced accuracy, macro-F1 and macro one-vs-rest AUROC "
               "(– where the run did not record it)")
    models = db.models()
    show_table(models, hide_index=True)

    st.subheader("Methods × metrics")
    st.caption("Per method, metric, region and fine-tuning state (fine-tuned models and untrained random-weights "
               "baselines are never averaged together): models scored, images scored (n, summed over models) and the "
               "mean of the models' mean scores. `energy_pg` and `mass_accuracy` are the same number on a non-negative "
               "map: where they coincide they are one row, `energy_pg = mass_accuracy` (docs/metrics.md)")
    st.dataframe(merge_coinciding(db.method_summary()), hide_index=True, width="stretch",
                 column_config={"mean_of_model_means": st.column_config.NumberColumn(format="%.3f")})

    st.subheader("Last runs")
    runs = db.runs(10)
    if runs.empty:
        st.caption("No runs recorded.")
    else:
        show_table(runs.rename(columns=RUN_TIMES), {c: "{:.0f}" for c in RUN_TIMES.values()}, hide_index=True)
    n_fail = int(counts.get("failures", 0))
    if n_fail:
        st.warning(f"{n_fail:,} failed items recorded — the *Runs* page lists them with their reasons.")

    st.subheader("Start a run")
    st.markdown(start_help(db.path) + PAGES_HELP)  # every command names the database shown


st.set_page_config(page_title="ViT heatmaps vs. ground truth", layout="wide")
PAGES = [st.Page(overview, title="Overview", default=True),
         *(st.Page(f"pages/{p.name}") for p in sorted((Path(__file__).parent / "pages").glob("[0-9]*.py")))]
try:
    st.navigation(PAGES).run()
except DamagedDatabase as exc:   # a read failed after the check: one sentence naming the file
    st.error(str(exc))
