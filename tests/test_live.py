"""The live run: the progress file the runner writes, what the pages make of it, and the one sentence a
missing, empty or first-time-written database gets."""
from __future__ import annotations

import dataclasses
import json
import os
import platform

from engine.dashboard.live import database_message, live_view
from engine.runner.progress import RunProgress
from engine.store.progress import progress_path, read_progress


def _state(**kw):
    base = {"experiment": "demo", "pid": os.getpid(), "host": platform.node(), "status": "running",
            "stage": "demo_blood_smear: localisation", "dataset": "demo_blood_smear", "model": "vit_demo:trained@ab",
            "jobs_total": 100, "jobs_done": 20, "jobs_skipped": 5, "jobs_failed": 0, "items_failed": 0,
            "stage_done": 3, "stage_total": 10, "started": 1000.0, "updated": 1100.0, "finished": None, "alive": True}
    return {**base, **kw}


def _shown(v):
    """The view's lines as the page shows them (names are markdown-escaped)."""
    return dataclasses.replace(v, headline=v.headline.replace("\\", ""),
                               details=[d.replace("\\", "") for d in v.details])


def test_live_view_of_a_running_run():
    v = _shown(live_view(_state(), now=1100.0))
    assert v.running and v.fraction == 0.25
    assert v.elapsed_s == 100.0 and v.remaining_s == 300.0  # 25 jobs in 100 s, 75 to go
    assert "25 of 100 jobs (5 already in the database)" in v.headline and "about 5 min 00 s left" in v.headline
    assert "Stage: demo_blood_smear: localisation (3 of 10 jobs)" in v.details
    assert "Now: dataset demo_blood_smear, model vit_demo:trained@ab" in v.details
    assert "Failures so far: none" in v.details
    assert not any("published every" in d for d in v.details)   # a progress file without the key (older runs)
    grouped = live_view(_state(publish_every=10.0), now=1100.0)
    assert "Results are published every 10 s: the tables can be up to 10 s behind the job counts above." \
        in grouped.details
    v = live_view(_state(jobs_failed=2, items_failed=7), now=1100.0)
    assert "Failures so far: 2 jobs, 7 items" in v.details


def test_live_view_of_a_finished_and_a_dead_run():
    v = live_view(_state(status="finished", alive=False, finished=1500.0, jobs_done=95), now=9999.0)
    assert not v.running and v.remaining_s is None and v.elapsed_s == 500.0
    assert v.headline.startswith("Last run `demo` finished: 100 of 100 jobs")
    dead = live_view(_state(alive=False), now=5000.0)  # says running, but its process is gone
    assert not dead.running and "stopped without finishing" in dead.headline
    assert live_view(None) is None and live_view({}) is None
    fresh = live_view(_state(jobs_done=0, jobs_skipped=0), now=1010.0)
    assert fresh.running and fresh.remaining_s is None and "left" not in fresh.headline


def test_database_message_for_every_state(tmp_path):
    db = tmp_path / "r.duckdb"
    running, done = live_view(_state()), live_view(_state(status="finished", alive=False, finished=1200.0))
    assert "for the first time" in database_message(db, False, False, running)
    assert "has not committed any scores yet" in database_message(db, True, False, running)
    assert "within about 10 s of each unit" in database_message(db, True, False, live_view(_state(publish_every=10)))
    assert database_message(db, True, True, running) is None
    for view in (None, done):
        missing = database_message(db, False, False, view)
        assert "no results database" in missing and f"python -m engine demo --db {db}" in missing
        empty = database_message(db, True, False, view)
        assert "holds no scores yet" in empty and f"engine run EXPERIMENT.toml --db {db}" in empty
        assert "--serve" not in missing + empty  # a hint never starts work in another database
        assert database_message(db, True, True, view) is None


def test_run_progress_file_is_replaced_whole(tmp_path):
    db = tmp_path / "r.duckdb"
    p = RunProgress(db, "exp", total=4, bars=False, min_interval=0.0)
    p.set_run("run-1")
    p.stage("d: train", 2, "d")
    p.working_on("m1")
    p.advance(done=1)
    p.advance(skipped=1)
    s = read_progress(db)
    assert s["alive"] and s["run_id"] == "run-1" and s["model"] == "m1"
    assert (s["jobs_done"], s["jobs_skipped"], s["stage_done"], s["stage_total"]) == (1, 1, 2, 2)
    assert [f.name for f in tmp_path.iterdir()] == [progress_path(db).name]  # no temporary left behind
    p.advance(failed=1)
    p.finish("finished with failures")
    s = read_progress(db)
    assert s["status"] == "finished with failures" and not s["alive"] and s["jobs_failed"] == 1
    progress_path(db).write_text("{not json")
    assert read_progress(db) is None
    dead = {**s, "status": "running", "pid": 2 ** 22 + 12345}  # no such process
    progress_path(db).write_text(json.dumps(dead))
    assert read_progress(db)["alive"] is False


def test_pending_names_the_stage_that_will_compute_it():
    from engine.dashboard.live import pending, resume_text
    plan = [{"name": "d: data", "dataset": "d", "kind": "data", "total": 0, "methods": []},
            {"name": "d: localisation", "dataset": "d", "kind": "localisation", "total": 4,
             "methods": ["attention (layer=0)", "baseline_random"]},
            {"name": "d: faithfulness", "dataset": "d", "kind": "faithfulness", "total": 2, "methods": ["attention"]},
            {"name": "d: sanity (MPRT)", "dataset": "d", "kind": "sanity", "total": 0, "methods": []},
            {"name": "e: localisation", "dataset": "e", "kind": "localisation", "total": 3, "methods": ["attention"]}]
    v = live_view(_state(plan=plan, stage_index=2), now=1100.0)
    assert pending(v, "faithfulness", "d").startswith("Not computed yet: the run under way will do it (stage 3 of 5: d")
    assert pending(v, "baselines", "d") is None  # its localisation stage is over
    assert pending(v, "sanity", "d") is None  # no MPRT jobs planned
    assert "(stage 5 of 5: e" in pending(v, "scores", "e") and "(stage 3 of 5" in pending(v, "jobs")
    early = live_view(_state(plan=plan, stage_index=0), now=1100.0)
    assert "(stage 2 of 5" in pending(early, "baselines", "d") and "(stage 2 of 5" in pending(early, "depth", "d")
    assert pending(live_view(_state(plan=plan, stage_index=0, alive=False), now=1100.0), "baselines", "d") is None
    assert pending(None, "jobs") is None
    # interrupted / failed / vanished: the command that continues it; a running or finished run: none
    stopped = _state(status="interrupted", alive=False, command="python -m engine run x.toml")
    assert "continue it with `python -m engine run x.toml`" in live_view(stopped).resume
    assert "running the command that started it again" in live_view({**stopped, "command": None}).resume
    assert "process is gone" in live_view(_state(alive=False)).resume
    assert live_view(_state()).resume is None and resume_text(_state(status="finished"), False, "") is None


def test_run_plan_and_command_line(tmp_path):
    from runner_fixtures import write_experiment

    from engine.runner.experiment import load_experiment
    from engine.runner.progress import command_line, planned_jobs, run_plan, stage_name
    exp = load_experiment(write_experiment(tmp_path))
    plan = run_plan(exp)
    ds = exp.datasets[0]["name"]
    assert [s["name"] for s in plan[:7]] == [stage_name(ds, k) for k in (
        "data", "train", "predict", "localisation", "faithfulness", "class_sensitivity", "sanity")]
    assert plan[6]["name"] == f"{ds}: sanity (MPRT)"
    assert sum(s["total"] for s in plan) == planned_jobs(exp)
    loc = plan[3]
    assert loc["metrics"] and loc["methods"] and all(isinstance(m, str) for m in loc["methods"])
    assert command_line(["/x/engine/__main__.py", "run", "my exp.toml"]) == "python -m engine run 'my exp.toml'"
    assert command_line(["/venv/bin/vit-heatmap-check", "demo"]) == "vit-heatmap-check demo"
    assert command_line(["/usr/bin/pytest", "-q"]) is None and command_line([]) is None
    p = RunProgress(tmp_path / "r.duckdb", "exp", total=sum(s["total"] for s in plan), bars=False, plan=plan,
                    command="python -m engine run x.toml")
    p.stage(stage_name(ds, "localisation"), loc["total"], ds)
    s = read_progress(tmp_path / "r.duckdb")
    assert s["stage_index"] == 3 and s["command"] == "python -m engine run x.toml" and len(s["plan"]) == len(plan)


def test_each_finished_job_is_written_at_once_and_costed_by_kind(tmp_path, caplog):
    import logging
    import time

    caplog.set_level(logging.INFO, logger="engine")  # the command line logs INFO
    from engine.runner.progress import stage_name
    db = tmp_path / "r.duckdb"
    plan = [{"name": stage_name("d", k), "dataset": "d", "kind": k, "total": t, "methods": [], "metrics": []}
            for k, t in (("train", 2), ("localisation", 4))]
    p = RunProgress(db, "exp", total=6, bars=False, min_interval=3600.0, plan=plan)  # throttling would hide all
    p.stage(stage_name("d", "train"), 2, "d")
    logging.getLogger("engine.models.train").info(
        "fine-tune vit_demo epoch 3 of 10: ...", extra={"unit_progress": {"model": "vit_demo", "unit": "epoch",
                                                                           "k": 3, "n": 10, "loss": 0.4123}})
    s = read_progress(db)
    assert s["training"] == {"model": "vit_demo", "unit": "epoch", "k": 3, "n": 10, "loss": 0.4123}
    v = _shown(live_view(s, now=s["updated"]))
    assert "Training: vit_demo epoch 3 of 10, loss 0.412" in v.details
    p.state["mark"] = time.time() - 10.0  # the first model trained for 10 s
    p.advance(done=1)
    s = read_progress(db)
    assert s["jobs_done"] == 1 and s["training"] is None  # counted at once, despite min_interval
    assert s["costs"]["train"][1] == 1 and 9.9 < s["costs"]["train"][0] < 11.0
    p.advance(skipped=1)
    assert read_progress(db)["costs"]["train"][1] == 1  # a skipped job costs nothing
    p.finish("finished")
    assert p._handler not in logging.getLogger("engine").handlers


def test_remaining_time_from_the_cost_of_each_kind():
    from engine.dashboard.live import COST_PRIOR, job_costs, remaining_estimate
    plan = [{"name": "d: train", "kind": "train", "total": 2}, {"name": "d: localisation", "kind": "localisation",
                                                                 "total": 10},
            {"name": "d: faithfulness", "kind": "faithfulness", "total": 4}]
    state = {"plan": plan, "stage_index": 1, "stage_total": 10, "stage_done": 4, "mark": 100.0,
             "costs": {"train": [200.0, 2], "localisation": [8.0, 4]}}
    per = job_costs(state["costs"])
    assert per["train"] == 100.0 and per["localisation"] == 2.0
    # faithfulness not measured yet: its prior ratio, scaled by the median measured / prior ratio
    ratios = sorted([100.0 / COST_PRIOR["train"], 2.0 / COST_PRIOR["localisation"]])
    assert per["faithfulness"] == COST_PRIOR["faithfulness"] * ratios[1]
    # 6 localisation jobs left at 2 s, 4 faithfulness jobs; the job under way has run 1 s already
    assert remaining_estimate(state, now=101.0) == 6 * 2.0 + 4 * per["faithfulness"] - 1.0
    assert remaining_estimate({**state, "costs": {}}, now=101.0) is None
    assert remaining_estimate({**state, "plan": []}, now=101.0) is None


def test_estimate_on_a_recorded_run_after_a_quarter_of_its_jobs():
    """The quick demo's job timeline (tests/recorded_run.json, bench/progress_estimate.py): once a quarter of
    the jobs are done, the estimate of the time left is within 30 % of the time the run really took."""
    import importlib.util

    from conftest import PROJECT_ROOT
    spec = importlib.util.spec_from_file_location("progress_estimate", PROJECT_ROOT / "bench" / "progress_estimate.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    recorded = json.loads((PROJECT_ROOT / "tests" / "recorded_run.json").read_text())
    points = bench.replay(recorded)
    assert len(points) == len(recorded["jobs"]) == sum(s["total"] for s in recorded["plan"])
    fraction, estimate, actual = next(p for p in points if p[0] >= 0.25)
    assert abs(estimate - actual) <= 0.3 * actual, (fraction, estimate, actual)
