"""Runs: run history with configs and durations, the jobs each run finished, and failures with reasons."""
from __future__ import annotations

import json

import streamlit as st

from engine.dashboard import JOB_TIME, RUN_TIMES, Db, md, open_page, show_table, url_selectbox, will_compute

db, runs = open_page("Runs", "Runs", Db.runs, "runs")
ALL = "(all runs)"

st.subheader("Run history")
st.caption("Newest first; wall time = finished − started (empty while running or after a crash); sum of job "
           "durations = each job's seconds added up: the jobs of one chunk each count the chunk's time, so this "
           "can be many times the wall time and is not the time the run took")
show_table(runs.rename(columns=RUN_TIMES), {c: "{:.0f}" for c in RUN_TIMES.values()}, hide_index=True)

run_id = url_selectbox("Run", [ALL, *runs.run_id], "run", "runs_")
only = None if run_id == ALL else run_id

if only:
    cfg = db.run_config(only)
    with st.expander(f"Configuration and package versions of {md(only)}", expanded=True):
        for col in ("config", "versions"):
            text = cfg[col].iloc[0] if len(cfg) else None
            st.markdown(f"**{col}**")
            if text:
                st.json(json.loads(text), expanded=1)
            else:
                st.caption("not recorded")

st.subheader("Jobs")
summary = db.jobs_summary(only)
if summary.empty:
    if not will_compute(db.path, "jobs"):
        st.caption("No jobs recorded" + (" for this run." if only else
                                         " (`python -m engine run EXPERIMENT.toml` and `python -m engine demo` record "
                                         "one per unit of work)."))
else:
    st.dataframe(summary, hide_index=True, width="stretch",
                 column_config={"seconds": st.column_config.NumberColumn(JOB_TIME, format="%.1f")})
    status = url_selectbox("Job status", ["all", "done", "failed"], "status", "runs_")
    jobs = db.jobs(only, None if status == "all" else status)
    st.caption(f"{len(jobs)} jobs shown (at most 1,000, newest first)")
    show_table(jobs, {"seconds": "{:.1f}"}, hide_index=True)

st.subheader("Failures")
reasons = db.failure_reasons(only)
if reasons.empty:
    st.success("No failures recorded" + (" for this run." if only else "."))
else:
    st.caption("How often each reason occurred")
    st.dataframe(reasons, hide_index=True, width="stretch")
    stage = url_selectbox("Failure stage", ["all", *sorted(reasons.stage.dropna().unique())], "stage", "runs_")
    fails = db.failures(only, None if stage == "all" else stage)
    st.caption(f"{len(fails)} failed items shown (at most 1,000, newest first); item `*` = the whole job")
    st.dataframe(fails, hide_index=True, width="stretch")
