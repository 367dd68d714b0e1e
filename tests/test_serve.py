"""``python -m engine serve`` serves one database and does nothing else; every hint names the database
shown and never starts work (issue 24, item 1)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from types import SimpleNamespace

from conftest import PROJECT_ROOT

from engine.cli import end_summary, main
from engine.dashboard.live import database_message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_serve_answers_and_writes_nothing(tmp_path):
    before = _files(PROJECT_ROOT / "data") if (PROJECT_ROOT / "data").exists() else []
    db, port = tmp_path / "study.duckdb", _free_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "XAI_DB": str(tmp_path / "other.duckdb")}
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--db", str(db), "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    status = r.status
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200, proc.poll()
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert f"serving {db}" in out and "starts no work" in out
    assert _files(tmp_path) == []  # no database, no logs, no demo data
    assert (_files(PROJECT_ROOT / "data") if (PROJECT_ROOT / "data").exists() else []) == before


def test_serve_refuses_a_port_out_of_range(tmp_path, capsys):
    assert main(["serve", "--db", str(tmp_path / "r.duckdb"), "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--port 70000" in err[0] and "65535" in err[0]
    assert main(["run", "x.toml", "--serve", "--port", "0", "--db", str(tmp_path / "r.duckdb")]) == 2
    assert _files(tmp_path) == []


def test_serve_refuses_a_port_in_use(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--db", str(tmp_path / "r.duckdb"), "--port", str(port)]) == 2
    assert "in use" in capsys.readouterr().err


def test_hints_name_the_database_and_start_no_work(tmp_path, capsys):
    db = tmp_path / "my study.duckdb"
    report = SimpleNamespace(run_id="r1", done=1, skipped=0, failed_jobs=0, failed_items=0, ok=True)
    text = end_summary(report, 3.0, db, None)
    assert "python -m engine serve --db" in text and str(db) in text and "demo" not in text
    assert main(["status", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert str(db) in out and "--serve" not in out and "demo --db" in out
    for exists in (False, True):  # missing or empty: the named database, never the default one
        msg = database_message(db, exists, False, None)
        assert str(db) in msg and "--serve" not in msg and msg.count("--db") == 2
    assert not db.exists()


def test_a_missing_xai_db_is_named_on_the_page(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    missing = tmp_path / "elsewhere.duckdb"
    monkeypatch.setenv("XAI_DB", str(missing))
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=90)
    at.run()
    assert not at.exception
    infos = [i.value for i in at.info]
    assert any(str(missing) in i and "--serve" not in i for i in infos), infos
    from engine.store import ResultWriter
    empty = tmp_path / "empty.duckdb"
    with ResultWriter(empty):
        pass
    monkeypatch.setenv("XAI_DB", str(empty))
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=90)
    at.run()
    texts = "\n".join(m.value for m in at.markdown)  # the Overview's 'Start a run' names it too
    assert f"engine run EXPERIMENT.toml --db {empty}" in texts and f"engine demo --db {empty}" in texts
    assert not missing.exists()
