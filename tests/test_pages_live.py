"""The pages while a run is under way: the Overview shows the live run (stage, jobs, dataset and model,
time, failures) and no "add some" hint; every page explains a database being written for the first time."""
from __future__ import annotations

import json
import os
import platform
import shutil
import time

import pytest
from test_pages import PAGES, run_page, texts

from engine.store.progress import progress_path

pytestmark = pytest.mark.slow  # end-to-end: a live demo run under the pages


def _running(db, **kw):
    state = {"run_id": "run-x", "experiment": "demo", "pid": os.getpid(), "host": platform.node(),
             "status": "running", "stage": "demo_blood_smear: localisation", "dataset": "demo_blood_smear",
             "model": "vit_demo:trained@abc", "jobs_total": 80, "jobs_done": 12, "jobs_skipped": 0, "jobs_failed": 1,
             "items_failed": 0, "stage_done": 4, "stage_total": 26, "started": time.time() - 60,
             "updated": time.time(), "finished": None, **kw}
    progress_path(db).write_text(json.dumps(state))


def _all_text(at) -> str:
    return texts(at) + "\n" + "\n".join(m.value for m in at.info)


@pytest.mark.parametrize("page", PAGES)
def test_first_write_is_explained_on_every_page(page, tmp_path, monkeypatch):
    db = tmp_path / "new.duckdb"
    _running(db)
    at = run_page(page, db, monkeypatch)
    info = " ".join(i.value for i in at.info)
    assert "writing" in info and "for the first time" in info and "no results database" not in info
    assert "13 of 80 jobs" in _all_text(at)  # the live panel under the message


def test_overview_shows_the_live_run_and_no_add_some_hint(dashboard_db, tmp_path, monkeypatch):
    db = tmp_path / "live.duckdb"
    shutil.copyfile(dashboard_db, db)
    _running(db)
    at = run_page("app.py", db, monkeypatch)
    text = _all_text(at)
    assert "Run `demo` is under way: 13 of 80 jobs" in text
    assert "Stage: demo_blood_smear: localisation (4 of 26 jobs)" in text
    assert "model vit_demo:trained@abc" in text and "Failures so far: 1 jobs" in text
    assert "holds no scores yet" not in text
    # finished: no panel; an empty database then gets the "add some" sentence again
    _running(db, status="finished", finished=time.time())
    at = run_page("app.py", db, monkeypatch)
    assert "under way" not in _all_text(at)


def test_url_parameter_that_does_not_apply_says_so_once(dashboard_db, monkeypatch):
    from test_pages import rerun
    at = run_page("pages/1_Leaderboard.py", dashboard_db, monkeypatch, {"metric": "nosuch", "conf": "x"})
    notes = [w.value for w in at.warning if "does not apply" in w.value]
    assert len(notes) == 1 and "`metric=nosuch`" in notes[0] and "showing `pointing_game`" in notes[0]
    rerun(at)  # the widget wrote its valid choice back: no second note
    assert not [w.value for w in at.warning if "does not apply" in w.value]
