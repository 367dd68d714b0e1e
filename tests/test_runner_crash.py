"""Crash safety and concurrency of batch runs, with real processes: kill -9 at several points and
resume; a dashboard-like reader querying in a loop while a run writes; the Ray executor."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest
from conftest import PROJECT_ROOT
from runner_fixtures import assert_same_results, run_cli, write_experiment

from engine.runner.experiment import load_experiment
from engine.runner.run import run_experiment

pytestmark = pytest.mark.slow  # end-to-end: runs of `engine run` killed half-way, local and Ray


def _jobs_done(db) -> int:
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute("SELECT count(*) FROM jobs WHERE status = 'done'").fetchone()[0]
    except duckdb.Error:  # not published yet
        return 0


def _start(exp_path, db):
    return subprocess.Popen([sys.executable, "-m", "engine", "run", str(exp_path), "--db", str(db), "--no-progress"],
                            cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_when(proc, cond, timeout=300) -> bool:
    """kill -9 ``proc`` as soon as ``cond()`` holds; False when it finished first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if cond():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.05)
    proc.wait()
    return False


def test_kill_9_at_several_points_then_resume_gives_the_uninterrupted_database(first_run, tmp_path):
    _, ref_db, report = first_run
    exp_path = write_experiment(tmp_path / "exp")  # fresh work dir: training happens in this test too
    db = tmp_path / "r.duckdb"
    t0 = time.monotonic()
    points = [lambda: time.monotonic() - t0 > 3.0,        # during data generation / training
              lambda: _jobs_done(db) >= 1,                # right after the first commit
              lambda: _jobs_done(db) >= 12,               # in the middle of the evaluate chunks
              lambda: _jobs_done(db) >= 30]               # near the end
    killed = 0
    for cond in points:
        killed += _kill_when(_start(exp_path, db), cond)
    assert killed >= 3, "the run finished before most kill points: make the experiment bigger"
    final = run_cli("run", exp_path, "--db", db, "--no-progress")
    assert final.returncode == 0, final.stderr[-2000:]
    assert not list(tmp_path.glob("r.duckdb.staging-*"))
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM jobs").fetchone()[0] == report.done
        statuses = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY started_at").fetchall()]
    assert statuses[-1] == "finished"  # killed runs stay 'running' or were never published
    assert_same_results(ref_db, db)


READER = """
import sys, time
from engine.dashboard import queries
db, stop = sys.argv[1], sys.argv[2]
ok = fail = 0
import os
print("ready", flush=True)  # imports done: the run starts only now (a fast run must not end before the reader starts)
while not os.path.exists(stop):
    try:
        if queries.database_exists(db):
            queries.table_counts(db)
            queries.runs(db)
            ok += 1
    except Exception as exc:
        fail += 1
        print("FAIL", type(exc).__name__, exc, flush=True)
    time.sleep(0.01)
print("ok", ok, "fail", fail, flush=True)
"""


def test_reader_querying_in_a_loop_during_a_run_sees_no_failure(first_run, tmp_path):
    exp_path, ref_db, _ = first_run
    db = tmp_path / "live.duckdb"
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db), str(stop)], cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "ready"
        report = run_experiment(load_experiment(exp_path), db, progress=False)  # re-uses the checkpoints
    finally:
        stop.touch()
        out = reader.communicate(timeout=60)[0]
    assert report.ok
    last = out.strip().splitlines()[-1].split()
    assert last[0] == "ok" and int(last[1]) > 10 and last[3] == "0", out[-2000:]
    assert_same_results(ref_db, db)


def test_ray_executor_gives_the_same_results_as_local(first_run, tmp_path):
    if os.environ.get("REQUIRE_RAY") != "1":
        pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")
    exp_path, ref_db, _ = first_run
    db = tmp_path / "ray.duckdb"
    report = run_experiment(load_experiment(exp_path), db, executor="ray", progress=False)
    assert report.ok
    # a Ray task gets one CPU, so torch reduces with one thread instead of several: floats may differ in
    # the last digits (seen: MPRT correlations at 1e-6); rows, keys, counts and decisions are identical
    assert_same_results(ref_db, db, rtol=1e-5)
