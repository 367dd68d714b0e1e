"""Batch runs: validation, skip of finished jobs, rerun after a change, bad items, locking, schedule."""
from __future__ import annotations

import subprocess
import sys
import tomllib

import duckdb
import pytest
from conftest import PROJECT_ROOT
from runner_fixtures import assert_same_results, run_cli, write_experiment
from tiny_experiment import VARIANTS, tiny, write_tiny

from engine.runner.experiment import ExperimentError, load_experiment, parse_experiment
from engine.runner.run import StrictDatasetError, run_experiment


def _count(db, sql, params=()):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchone()[0]


def _copy(db, tmp_path):
    out = tmp_path / "copy.duckdb"
    out.write_bytes(db.read_bytes())
    return out


# -- validation -------------------------------------------------------------------------------
BASE = {"name": "x", "datasets": [{"name": "d", "root": "."}], "models": [{"name": "vit_demo"}],
        "methods": {"attention": {}}, "metrics": {"pointing_game": {}}}


@pytest.mark.parametrize("change, expected", [
    ({"methods": {"atention": {}}}, "unknown method 'atention'; registered: ["),
    ({"methods": {"attention": {"layr": 1}}}, "unknown parameter(s) ['layr']; allowed: ['layer', 'head_fusion']"),
    ({"metrics": {"insertion_auc": {"steps": 3}}}, "unknown parameter(s) ['steps']; allowed: ['n_steps', "),
    ({"metrics": {"mprt": {}}}, "configure it under [sanity]"),
    ({"models": [{"name": "vit_demo", "init": "pretrained"}]}, "models.0.init"),
    ({"models": [{"name": "vit_demo", "train": {"epoch": 3}}]}, "unknown train key(s) ['epoch']; allowed: ["),
    ({"batch": 3}, "batch: unknown key (top-level keys: ['batch_size', "),
    ({"datasets": [{"name": "d", "generate": "xray"}]}, "allowed: ['blood_smear', 'ultrasound', 'confounded']"),
])
def test_invalid_experiment_names_the_key_and_the_allowed_values(change, expected):
    with pytest.raises(ExperimentError) as err:
        parse_experiment({**BASE, **change}, source="exp.toml")
    msg = str(err.value)
    assert msg.startswith("exp.toml: ") and expected in msg and "\n" not in msg


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ExperimentError, match="bad.toml: not valid TOML"):
        load_experiment(bad)
    with pytest.raises(ExperimentError, match="no such experiment file"):
        load_experiment(tmp_path / "none.toml")


# -- incremental ------------------------------------------------------------------------------
@pytest.mark.slow  # end-to-end: runs of the tiny experiment
def test_first_run_writes_every_job(first_run):
    _, db, report = first_run
    assert report.ok and report.failed_jobs == 0
    # 2 models x (1 train + 1 predict) + 2 x 5 variants x 3 metrics evaluate + 1 sanity (trained model only)
    assert report.done == 2 * 2 + 2 * 5 * 3 + 1
    assert _count(db, "SELECT count(*) FROM jobs WHERE status = 'done'") == report.done
    n_test = _count(db, "SELECT count(*) FROM images WHERE split = 'test'")
    # every test image annotated: 5 variants x (2 localisation metrics x 2 regions + 1 faithfulness) per model
    assert _count(db, "SELECT list(DISTINCT region ORDER BY region) FROM scores") == ["box", "mask", "none"]
    assert _count(db, "SELECT count(*) FROM scores") == 2 * 5 * (2 * 2 + 1) * n_test
    assert _count(db, "SELECT count(DISTINCT method_params) FROM scores WHERE method = 'attention'") == 2
    assert _count(db, "SELECT count(*) FROM runs WHERE status = 'finished'") == 1
    assert _count(db, "SELECT count(*) FROM models WHERE test_accuracy IS NOT NULL") == 2


@pytest.mark.slow  # end-to-end: runs of the tiny experiment
def test_second_run_skips_everything_and_changes_nothing(first_run, tmp_path):
    exp_path, db, report = first_run
    again = _copy(db, tmp_path)
    r2 = run_experiment(load_experiment(exp_path), again, progress=False)
    assert r2.done == 0 and r2.skipped == report.done and r2.ok
    assert_same_results(db, again)


@pytest.mark.slow  # end-to-end: runs of the tiny experiment
def test_changed_metric_parameter_reruns_exactly_those_jobs(first_run, tmp_path):
    exp_path, db, _ = first_run
    changed = _copy(db, tmp_path)
    exp = load_experiment(write_experiment(exp_path.parent.parent / "exp2", n_steps=4))
    exp = exp.model_copy(update={"work_dir": str(exp_path.parent / "work")})
    r2 = run_experiment(exp, changed, progress=False)
    assert r2.done == 2 * 5  # insertion_auc with n_steps=4, for each model x method variant; nothing else
    assert _count(changed, "SELECT count(DISTINCT metric_params) FROM scores WHERE metric = 'insertion_auc'") == 2


@pytest.mark.slow  # end-to-end: runs of the tiny experiment
def test_dry_run_lists_done_and_pending(first_run, tmp_path):
    exp_path, db, _ = first_run
    out = run_cli("run", exp_path, "--db", db, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "nothing to do: every job is in the database" in out.stdout
    fresh = run_cli("run", exp_path, "--db", tmp_path / "none.duckdb", "--dry-run")
    assert "evaluate jobs to run" in fresh.stdout and "done" in fresh.stdout  # the checkpoints exist already


# -- failures ---------------------------------------------------------------------------------
@pytest.mark.slow  # end-to-end: runs of the tiny experiment
def test_bad_image_is_recorded_and_the_run_goes_on(first_run, tmp_path):
    exp_path, db, _ = first_run
    exp = load_experiment(exp_path)
    work = tmp_path / "work"
    import shutil
    shutil.copytree(exp_path.parent / "work", work)
    test_id = _count(db, "SELECT min(image_id) FROM images WHERE split = 'test'")
    victim = work / "demo" / "smear" / "images" / f"{test_id}.png"
    victim.write_bytes(b"not a png")
    out_db = tmp_path / "bad.duckdb"
    exp = exp.model_copy(update={"work_dir": str(work)})
    report = run_experiment(exp, out_db, progress=False)
    assert not report.ok and report.failed_jobs == 0 and report.failed_items >= 1
    reason = _count(out_db, "SELECT reason FROM failures WHERE stage = 'load' LIMIT 1")
    assert victim.name in reason
    assert _count(out_db, "SELECT count(*) FROM scores WHERE image_id = ?", [test_id]) == 0
    assert _count(out_db, "SELECT count(*) FROM scores") > 0
    status = run_cli("status", "--db", out_db)
    assert victim.name in status.stdout
    # the same dataset with strict = true: the run stops at the bad image (after recording it)
    blocks = [{**exp.datasets[0], "strict": True}]
    with pytest.raises(StrictDatasetError, match=f"{victim.name}.*strict = true: run stopped"):
        run_experiment(exp.model_copy(update={"datasets": blocks}), tmp_path / "strict.duckdb", progress=False)


@pytest.mark.slow  # end-to-end: runs of the tiny experiment
def test_cli_exit_codes_and_second_writer_refused(first_run, tmp_path):
    exp_path, db, _ = first_run
    hold = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom engine.store import ResultWriter\n"
                             "w = ResultWriter(sys.argv[1]).open()\nprint('ready', flush=True)\ntime.sleep(60)",
                             str(db)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdout.readline().strip() == "ready"
        out = run_cli("run", exp_path, "--db", db)
        assert out.returncode == 3 and "another run is writing to this database" in out.stderr
    finally:
        hold.kill()
        hold.wait()
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n')
    out = run_cli("run", bad, "--db", tmp_path / "x.duckdb")
    assert out.returncode == 2 and "bad.toml: datasets: Field required" in out.stderr


def test_schedule_prints_cron_and_systemd(tmp_path):
    out = run_cli("schedule", "--print-cron", "data/experiments/demo.toml", "--db", tmp_path / "r.duckdb")
    assert out.returncode == 0
    line = [x for x in out.stdout.splitlines() if not x.startswith("#")][0]
    assert line.startswith("0 2 * * * cd ") and " -m engine run " in line and "--wait 3600" in line
    unit = run_cli("schedule", "data/experiments/demo.toml", "--systemd", "--every", "hourly")
    assert "OnCalendar=hourly" in unit.stdout and "ExecStart=" in unit.stdout


def test_presets_validate():
    for name in ("demo.toml", "demo_quick.toml", "demo_full.toml", "study1.toml", "study2.toml", "tiny.toml"):
        exp = load_experiment(PROJECT_ROOT / "data" / "experiments" / name)
        assert exp.methods and exp.metrics and exp.models


def test_tiny_variants_are_the_shared_file_with_their_overrides(tmp_path):
    """What tests/tiny_experiment.py writes reads back as data/experiments/tiny.toml with exactly the keys
    overridden (the TOML writer loses nothing), for every variant and the runner tests' one."""
    shared = tiny()
    for name, variant in VARIANTS.items():
        written = tomllib.loads(write_tiny(tmp_path / f"{name}.toml", **variant()).read_text())
        assert written == {**shared, **variant()}, name
        load_experiment(tmp_path / f"{name}.toml")
    runner = tomllib.loads(write_experiment(tmp_path / "r", n_steps=4).read_text())
    changed = {k for k in shared if runner[k] != shared[k]}
    assert changed == {"work_dir", "metrics"} and runner["metrics"]["insertion_auc"] == {"n_steps": 4}


@pytest.mark.slow  # end-to-end: runs of the tiny experiment
def test_run_records_host_commit_versions_and_counts(first_run):
    _, db, _ = first_run
    with duckdb.connect(str(db), read_only=True) as con:
        host, versions, started, finished, counts = con.execute(
            "SELECT host, versions, started_at, finished_at, counts FROM runs").fetchone()
    assert host and "torch" in versions and finished >= started
    assert '"done": 35' in counts and '"failed_items": 0' in counts


@pytest.mark.slow  # end-to-end: runs of the tiny experiment
def test_cli_run_leaves_a_report_beside_its_log(first_run, tmp_path):
    import shutil
    exp_path, db, _ = first_run
    copy = tmp_path / "r.duckdb"
    shutil.copyfile(db, copy)
    out = run_cli("run", exp_path, "--db", copy, "--no-progress")
    assert out.returncode == 0, out.stderr[-2000:]
    logs = sorted((tmp_path / "logs").glob("tiny-*.log"))
    assert len(logs) == 1 and logs[0].with_suffix(".report.md").is_file()
    assert "### Models" in logs[0].with_suffix(".report.md").read_text(encoding="utf-8")
