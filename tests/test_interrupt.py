"""SIGTERM and Ctrl-C end a run cleanly (real processes); a second run on a locked database is refused
before torch is imported; a cached checkpoint whose bytes changed is trained again."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest
from conftest import PROJECT_ROOT
from runner_fixtures import run_cli, write_experiment

from engine.store.lock import RunLock

pytestmark = pytest.mark.slow  # end-to-end: runs of `engine run` interrupted by signals


def _jobs_done(db) -> int:
    """Jobs the live run has finished (its progress file: units are published up to ``publish_every`` later)."""
    try:
        return json.loads(db.with_name(db.name + ".progress.json").read_text())["jobs_done"]
    except (OSError, ValueError, KeyError):  # not written yet
        return 0


def test_second_run_is_refused_before_torch_is_imported(tmp_path):
    exp_path = write_experiment(tmp_path / "exp")
    db = tmp_path / "r.duckdb"
    code = ("import sys, time\nt = time.monotonic()\nfrom engine.cli import main\n"
            "rc = main(['run', sys.argv[1], '--db', sys.argv[2]])\n"
            "print('torch' in sys.modules, 'timm' in sys.modules, round(time.monotonic() - t, 1))\nsys.exit(rc)")
    with RunLock(db):
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "-c", code, str(exp_path), str(db)], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=120)
        elapsed = time.monotonic() - t0
    assert out.returncode == 3, out.stderr
    torch_loaded, timm_loaded, _ = out.stdout.split()
    assert (torch_loaded, timm_loaded) == ("False", "False")  # refused before the heavy imports
    assert out.stderr.strip().splitlines() == [f"error: {db}: another run is writing to this database; wait for it "
                                               f"to finish (or use --wait SECONDS) or use another --db"]
    assert elapsed < 15  # loose: seconds on a loaded machine (about 40 s of imports before the fix)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_the_run_cleanly(tmp_path, sig):
    exp_path = write_experiment(tmp_path / "exp")
    db = tmp_path / "r.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", str(exp_path), "--db", str(db), "--no-progress"],
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and _jobs_done(db) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before the signal: make the experiment bigger"
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err[-3000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("run ") and f"interrupted by {sig.name}:" in last and "jobs done" in last, last
    with duckdb.connect(str(db), read_only=True) as con:
        run_id, status, counts = con.execute("SELECT run_id, status, counts FROM runs ORDER BY started_at DESC "
                                             "LIMIT 1").fetchone()
        done_here = con.execute("SELECT count(*) FROM jobs WHERE run_id = ? AND status = 'done'",
                                [run_id]).fetchone()[0]
    counts = json.loads(counts)
    assert status == "interrupted" and run_id in last
    assert counts["done"] >= 1 and done_here == counts["done"]   # every unit finished before the signal is published
    assert f"{counts['done']} jobs done" in last
    left = [p.name for p in tmp_path.iterdir() if "staging" in p.name or p.name.endswith((".next", ".tmp"))]
    assert not left, f"staging copies left behind: {left}"
    RunLock(db).acquire(0).release()  # the lock was released
    if sig == signal.SIGTERM:  # the same command continues where it stopped
        again = run_cli("run", exp_path, "--db", db, "--no-progress")
        assert again.returncode == 0, again.stderr[-2000:]
        with duckdb.connect(str(db), read_only=True) as con:
            statuses = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY started_at").fetchall()]
        assert statuses == ["interrupted", "finished"]


def test_checkpoint_that_no_longer_matches_its_sidecar_is_trained_again(tmp_path, caplog):
    from engine.models import create_model, save_checkpoint
    from engine.runner.units import reuse_checkpoint
    model, info = create_model("vit_demo", 2)
    path = tmp_path / "ckpt" / "m.safetensors"
    sha = save_checkpoint(path, model, info, {"init": "trained", "metrics": {}, "history": []})
    intact = reuse_checkpoint(str(path))
    assert intact is not None and intact.sha256 == sha
    with open(path, "r+b") as fh:  # flip one byte of the weights
        fh.seek(-1, os.SEEK_END)
        last = fh.read(1)
        fh.seek(-1, os.SEEK_END)
        fh.write(bytes([last[0] ^ 0xFF]))
    with caplog.at_level(logging.WARNING, logger="engine"):
        assert reuse_checkpoint(str(path)) is None  # trained again, not re-used
    assert not path.exists() and not (tmp_path / "ckpt" / "m.safetensors.json").exists()
    aside = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert len(aside) == 2 and all(".stale-" in n for n in aside)
    assert "do not match the sha256 in its sidecar" in caplog.text and "trained again" in caplog.text
    save_checkpoint(path, model, info, {"init": "trained"})
    (tmp_path / "ckpt" / "m.safetensors.json").write_text("{not json")
    assert reuse_checkpoint(str(path)) is None and "sidecar cannot be read" in caplog.text


def test_a_signal_that_surfaces_as_another_error_still_interrupts():
    """DuckDB turns a signal that arrives mid-query into RuntimeError('Query interrupted'); the run must
    still stop as interrupted (not record a failed unit and go on)."""
    from engine.store.lock import Interrupted, install_signal_handlers, interrupt_signal, raise_if_interrupted
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        install_signal_handlers()
        assert interrupt_signal(RuntimeError("ordinary")) is None
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at the next bytecode
        converted = RuntimeError("Query interrupted")
        assert interrupt_signal(converted) == signal.SIGTERM
        with pytest.raises(Interrupted) as info:
            raise_if_interrupted(converted)
        assert info.value.signum == signal.SIGTERM and info.value.__cause__ is converted
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    assert interrupt_signal(converted) is None  # only while the run's handlers are installed
