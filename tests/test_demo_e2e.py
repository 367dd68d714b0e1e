"""End to end, as a user runs it: ``engine run EXPERIMENT --serve`` on a temporary database and port (a
small experiment of the demo's shape: tests/e2e.toml). The dashboard answers first, the Overview shows
the run under way with its job count, then finished; then the database contents and a rerun."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import duckdb
import pytest
from conftest import PROJECT_ROOT
from streamlit.testing.v1 import AppTest

from engine.dashboard.live import live_run
from engine.explain import METHODS
from engine.metrics import METRICS
from engine.runner.experiment import load_experiment

pytestmark = pytest.mark.slow  # end-to-end: a demo run in a subprocess, then the dashboard

E2E = PROJECT_ROOT / "tests" / "e2e.toml"
E2E_METRICS = load_experiment(E2E).metrics


def _run(args, timeout=900):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(cond, timeout: float, what: str, step: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def _overview(db, monkeypatch) -> str:
    monkeypatch.setenv("XAI_DB", str(db))
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info])


def test_run_with_serve_end_to_end(tmp_path, monkeypatch):
    db, port, log = tmp_path / "x.duckdb", _free_port(), tmp_path / "out.log"
    args = ["run", E2E, "--db", db, "--work-dir", tmp_path / "data", "--no-progress"]
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "engine", *map(str, args), "--serve", "--port", str(port)],
                                cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # the URL at once, before any work
        _wait(lambda: f"http://127.0.0.1:{port}" in log.read_text(), 60, "the dashboard URL")
        view = _wait(lambda: (v := live_run(db)) is not None and v.running and v, 120, "the run's progress")
        total = int(view.headline.split(" of ")[1].split(" jobs")[0].replace(",", ""))
        assert total > 100
        text = _overview(db, monkeypatch)  # the Overview while the run goes on: live, no "add some" hint
        assert "is under way" in text and f"of {total:,} jobs" in text and "Stage:" in text, text
        assert "holds no scores yet" not in text
        _wait(lambda: _health(port), 180, "the dashboard to answer")
        _wait(lambda: "dashboard still serving" in log.read_text() or proc.poll() is not None, 3000,
              "the run's end")  # generous: a loaded machine, not a speed target
        assert proc.poll() is None, log.read_text()[-3000:]  # still serving after the run
        out = log.read_text()
        assert "0 failed jobs, 0 failed items" in out and f"dashboard: http://127.0.0.1:{port}" in out
        view = live_run(db)
        assert not view.running and view.headline.startswith("Last run `e2e` finished")
        assert view.fraction == 1.0
        text = _overview(db, monkeypatch)
        assert "under way" not in text and "holds no scores" not in text
        assert _health(port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the run's process and its dashboard
            proc.wait(timeout=30)
    before = check_e2e_database(db)

    # a second run re-uses the cached checkpoints and replaces (never duplicates) results
    again = _run(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 jobs done" in again.stdout and "re-using checkpoint" in again.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == before
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2

    status = _run(["status", "--db", db])  # fits a screen
    assert status.returncode == 0 and "chefer_gae" in status.stdout and "survive_randomisation" in status.stdout
    assert len(status.stdout.splitlines()) < 60 and "status --all" in status.stdout
    full = _run(["status", "--all", "--db", db])
    assert full.returncode == 0 and "survives_randomisation" in full.stdout and "mean_of_model_means" in full.stdout


def check_e2e_database(db) -> int:
    """What the e2e experiment must have written; returns the number of score rows."""
    with duckdb.connect(str(db), read_only=True) as con:
        smear = con.execute("SELECT dataset_id FROM datasets WHERE name = 'demo_blood_smear'").fetchone()[0]
        q = lambda sql, *p: con.execute(sql.replace("{D}", "dataset_id = ?"), [smear] * sql.count("{D}")).fetchall()  # noqa: E731
        n_test = q("SELECT count(*) FROM images WHERE {D} AND split = 'test'")[0][0]
        assert n_test == 12
        assert {r[0] for r in q("SELECT init FROM models WHERE {D}")} == {"trained", "random"}
        assert q("SELECT status FROM runs") == [("finished",)]
        # predictions for every test image of every model
        assert q("SELECT count(*), count(DISTINCT (model_id, image_id)) FROM predictions WHERE {D}") == \
            [(2 * n_test,) * 2]
        # one explanation map per (model, method, image), with its grid
        n_methods = len(METHODS)
        assert q("SELECT count(*), count(DISTINCT (model_id, method, image_id)) FROM explanations WHERE {D}") == \
            [(2 * n_methods * n_test,) * 2]
        grids = dict(q("SELECT DISTINCT method, (grid_h, grid_w, len(map)) FROM explanations WHERE {D}"))
        assert grids["chefer_gae"] == (8, 8, 64) and grids["occlusion"] == (64, 64, 4096)  # token / input grid
        # every (model, method, metric, region) has a score row for every test image
        per = q("SELECT model_id, method, metric, region, count(DISTINCT image_id) FROM scores WHERE {D} GROUP BY ALL")
        faith = [m for m in E2E_METRICS if METRICS[m].kind == "faithfulness"]
        assert len(per) == 2 * n_methods * ((len(E2E_METRICS) - len(faith)) * 2 + len(faith))
        assert all(r[4] == n_test for r in per)
        # a whole insertion and deletion curve per (model, method, image) whose map is not degenerate
        # (all-zero / constant maps are counted in degenerate_maps and never scored: docs/metrics.md)
        n_degenerate = q("SELECT count(*) FROM degenerate_maps WHERE {D}")[0][0]
        assert q("SELECT count(*), min(len(y)) FROM curves WHERE {D}") == [((2 * n_methods * n_test - n_degenerate) * 2,
                                                                            5)]
        assert q("SELECT count(*) FROM scores WHERE value IS NOT NULL AND (value < 0 OR value > 1)") == [(0,)]
        # summaries with CIs for every (model, method, metric, region); MPRT rows for the trained model
        assert q("SELECT count(*) FROM summary WHERE {D}")[0][0] == len(per)
        assert q("SELECT count(*) FROM summary WHERE n > 1 AND NOT (ci_low <= ci_high)") == [(0,)]
        assert q("SELECT count(DISTINCT method), count(DISTINCT step), count(DISTINCT image_id) FROM sanity "
                 "WHERE {D}") == [(n_methods, 6, 2)]
        # a pretraining strategy recorded; the confounder's marker region scored beside the lesion
        pre = q("SELECT strategy, CAST(json_extract_string(hparams, '$.pretraining.steps') AS INTEGER) FROM models "
                "WHERE strategy = 'supervised'")
        assert pre == [("supervised", 2)], pre
        regions = {r[0] for r in q("SELECT DISTINCT s.region FROM scores s JOIN datasets d USING (dataset_id) "
                                   "WHERE d.name = 'demo_confounded'")}
        assert {"lesion", "marker"} <= regions
        assert q("SELECT count(*) FROM failures") == [(0,)]
        return q("SELECT count(*) FROM scores")[0][0]


def test_cli_help_lists_subcommands(tmp_path):
    proc = _run(["--help"])
    assert proc.returncode == 0 and "demo" in proc.stdout and "status" in proc.stdout
    missing = _run(["status", "--db", tmp_path / "none.duckdb"])
    assert missing.returncode == 1 and "engine demo" in missing.stdout
    demo = _run(["demo", "--help"])
    assert "--full" in demo.stdout and "--serve" in demo.stdout
