"""Issue 25, item 4: one sentence for every bad input that got past validation or hung -- each case run
through ``python -m engine run`` in this process: exit 2 and one line before any work, no database and no
lock file left behind, no traceback, no hang."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import PROJECT_ROOT
from PIL import Image
from test_bad_input_cli import BASE, cli, ds, folder, model, to_toml  # noqa: F401 (folder: a fixture)

TOML_DEEP = b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n"


@pytest.fixture(scope="module")
def hostile(folder):  # noqa: F811
    """Beside ``ds/``: a listed image that is a named pipe, one that is a symlink loop, masks of another
    size than their images, a box table of nan / inf."""
    root = folder / "ds"
    rows = (root / "labels.csv").read_text()
    os.mkfifo(root / "images" / "pipe.png")
    (root / "pipe.csv").write_text(rows + "pipe.png,a\n")
    os.symlink("loop.png", root / "images" / "loop.png")
    (root / "loop.csv").write_text(rows + "loop.png,a\n")
    (root / "masks").mkdir()
    for i in range(8):
        Image.new("L", (32, 32), 255).save(root / "masks" / f"a{i}.png")
    (root / "nanboxes.csv").write_text("image,x0,y0,x1,y1\n" + "".join(
        f"a{i}.png,{'nan' if i % 2 else 'inf'},2,30,30\n" for i in range(8)))
    return folder


MASKS = {"mask_template": "masks/{stem}.png", "mask_regions": {"lesion": [255]}}

# (id, experiment, extra flags, expected text)
CASES = [
    ("toml-nested-5000-deep", TOML_DEEP, [], "nested too deeply"),
    ("image-symlink-loop", ds(labels="loop.csv"), [], "symbolic link loop"),
    ("image-named-pipe", ds(labels="pipe.csv"), [], "is a named pipe, not a regular file"),
    ("db-under-proc", BASE, ["--db", "/proc/self/r.duckdb"], "system folder"),
    ("device-list", BASE, ["--device", "cpu,cuda"], "--device 'cpu,cuda': not a device"),
    ("ray-address-garbage", BASE, ["--executor", "ray", "--ray-address", "%%garbage%%"], "--ray-address"),
    ("ray-address-without-ray", BASE, ["--ray-address", "auto"], "it is for --executor ray"),
    ("threads-1e9", BASE, ["--threads", "1000000000"], "--threads 1000000000: expected a number of threads"),
    ("threads-zero", BASE, ["--threads", "0"], "--threads 0"),
    ("port-70000", BASE, ["--serve", "--port", "70000"], "--port 70000: expected a TCP port"),
    ("head-fusion-evil", {**BASE, "methods": {"attention": {"head_fusion": "evil"}}}, [],
     "head_fusion = 'evil' is not one of ['mean', 'max', 'min']"),
    ("rollout-head-fusion-evil", {**BASE, "methods": {"rollout": {"head_fusion": "evil"}}}, [], "head_fusion"),
    ("masks-of-another-size", ds(**MASKS), [], "mask is 32x32 but its image is 64x64"),
    ("regions-empty", {**BASE, "regions": []}, [], "regions = []: nothing would be scored"),
    ("boxes-nan-inf", ds(boxes_file="nanboxes.csv"), [], "not finite numbers"),
    ("test-split-empty", ds(split_fractions=[0.75, 0.25, 0.0]), [], "no image of the test split would be scored"),
    ("train-without-val", ds(split_fractions=[0.75, 0.0, 0.25]), [], "the val split has no images"),
    ("label-escapes", model(label="../../../../tmp/x"), [], "label '../../../../tmp/x' must be a plain name"),
]


def _experiment(base, case_id, spec):
    path = base / f"{case_id}.toml"
    path.write_bytes(spec if isinstance(spec, bytes) else to_toml(spec).encode())
    return path


@pytest.mark.parametrize("case_id, spec, flags, expect", CASES, ids=[c[0] for c in CASES])
def test_run_refuses_in_one_line(hostile, tmp_path, capsys, case_id, spec, flags, expect):
    path = _experiment(hostile, case_id, spec)
    db = tmp_path / "r.duckdb"
    argv = ["run", str(path), "--no-progress", *(flags if "--db" in flags else ["--db", str(db), *flags])]
    t0 = time.monotonic()
    rc, out = cli(argv, capsys)
    lines = out.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in out, out
    assert lines[0].startswith("error: ") and expect in lines[0], (expect, lines[0])
    assert time.monotonic() - t0 < 120  # no hang (loose: a loaded machine)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no database, no lock file
    if not flags:  # the dry run reports what the run would refuse
        rc, out = cli(["run", str(path), "--db", str(db), "--dry-run"], capsys)
        assert rc == 2 and expect in out and "Traceback" not in out, out


@pytest.mark.parametrize("case_id", ["toml-nested-5000-deep", "image-named-pipe", "image-symlink-loop"])
def test_check_data_says_it_in_one_line(hostile, capsys, case_id):
    spec, expect = {c[0]: (c[1], c[3]) for c in CASES}[case_id]
    path = _experiment(hostile, case_id, spec)
    rc, out = cli(["check-data", str(path)], capsys)
    assert rc in (1, 2) and "Traceback" not in out and expect in out, out


def test_a_named_pipe_as_the_experiment_file_is_refused(tmp_path, capsys):
    pipe = tmp_path / "exp.toml"
    os.mkfifo(pipe)
    rc, out = cli(["run", str(pipe), "--db", str(tmp_path / "r.duckdb")], capsys)
    assert rc == 2 and "is a named pipe, not a regular file" in out and len(out.strip().splitlines()) == 1


def test_max_pixels_raises_pils_decompression_bomb_limit(tmp_path, monkeypatch):
    from engine.data import DatasetError
    from engine.data.images_io import read_image
    Image.new("RGB", (100, 100), (10, 20, 30)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL's limit far below the image
    assert read_image(tmp_path / "big.png", max_pixels=20_000).shape == (100, 100, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    with pytest.raises(DatasetError, match="above max_pixels = 5000"):
        read_image(tmp_path / "big.png", max_pixels=5000)


def test_a_run_that_scores_nothing_exits_non_zero_with_the_reason(tmp_path, monkeypatch, capsys):
    from engine.cli.outcome import nothing_scored
    assert nothing_scored(tmp_path / "none.duckdb", None) == "nothing was written to the database"
    from engine.store import ResultWriter
    db = tmp_path / "empty.duckdb"
    with ResultWriter(db):
        pass
    assert "every score is undefined" in nothing_scored(db, None)


@pytest.mark.slow  # end-to-end: a run of the tiny experiment, interrupted
def test_second_sigint_still_reports_the_run(tmp_path):
    """Two Ctrl-C in a row after units were published: the run is reported with its id and counts and is
    marked 'interrupted', never 'before any work was recorded'."""
    import duckdb
    from runner_fixtures import write_experiment
    from test_interrupt import _jobs_done
    exp_path = write_experiment(tmp_path / "exp")
    db = tmp_path / "r.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", str(exp_path), "--db", str(db), "--no-progress"],
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and _jobs_done(db) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before the signal"
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(0.05)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("run ") and "interrupted by SIGINT" in last and "before any work" not in last, last
    with duckdb.connect(str(db), read_only=True) as con:
        status = con.execute("SELECT status FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    assert status == "interrupted"


def test_a_real_run_that_scores_nothing_exits_1(hostile, tmp_path, capsys):
    """No masks or boxes, every image scored anyway: each pointing-game score is undefined, the run
    'finishes' with no failed job -- and still exits 1, saying why."""
    exp = {**ds(boxes_format=None, boxes_file=None, score_only_annotated=False),
           "models": [{"name": "vit_demo", "init": "random"}]}
    path = _experiment(hostile, "scores-nothing", exp)
    rc, out = cli(["run", str(path), "--db", str(tmp_path / "r.duckdb"), "--no-progress", "--no-report"], capsys)
    assert rc == 1 and "Traceback" not in out, out
    assert "scored nothing: every score is undefined" in out, out
