"""End to end: the quick demo as a user runs it, then the database contents."""
from __future__ import annotations

import subprocess
import sys

import duckdb
from conftest import PROJECT_ROOT

from engine.explain import METHODS
from engine.metrics import METRICS
from engine.runner.experiment import load_experiment

DEMO_METRICS = load_experiment(PROJECT_ROOT / "data" / "experiments" / "demo_quick.toml").metrics


def _run(args, tmp_path):
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=1800)


def test_quick_demo_end_to_end(tmp_path):
    db = tmp_path / "x.duckdb"
    args = ["demo", "--quick", "--db", str(db), "--data-dir", str(tmp_path / "data"), "--no-progress"]
    proc = _run(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test accuracy" in proc.stdout
    before = check_quick_demo_database(db)

    # a second run re-uses the cached checkpoints and replaces (never duplicates) results
    proc = _run(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0 jobs done" in proc.stdout and "re-using checkpoint" in proc.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == before
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2

    status = _run(["status", "--db", str(db)], tmp_path)
    assert status.returncode == 0 and "chefer_gae" in status.stdout and "survives_randomisation" in status.stdout


def check_quick_demo_database(db) -> int:
    """What the quick demo must have written; returns the number of score rows."""
    with duckdb.connect(str(db), read_only=True) as con:
        smear = con.execute("SELECT dataset_id FROM datasets WHERE name = 'demo_blood_smear'").fetchone()[0]
        con.execute(f"CREATE TEMP VIEW s AS SELECT * FROM scores WHERE dataset_id = '{smear}'")
        q = lambda sql: con.execute(sql.replace("{D}", f"dataset_id = '{smear}'")).fetchall()  # noqa: E731
        n_test = q("SELECT count(*) FROM images WHERE {D} AND split = 'test'")[0][0]
        assert n_test == 48
        models = [r[0] for r in q("SELECT model_id FROM models WHERE {D} ORDER BY init")]
        assert len(models) == 2 and {r[0] for r in q("SELECT init FROM models WHERE {D}")} == {"trained", "random"}
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
        per = q("SELECT model_id, method, metric, region, count(DISTINCT image_id) FROM s GROUP BY ALL")
        faith = [m for m in DEMO_METRICS if METRICS[m].kind == "faithfulness"]
        assert len(per) == 2 * n_methods * ((len(DEMO_METRICS) - len(faith)) * 2 + len(faith))
        assert all(r[4] == n_test for r in per)
        # a whole insertion and deletion curve per (model, method, image)
        assert q("SELECT count(*), min(len(y)) FROM curves WHERE {D}") == [(2 * n_methods * n_test * 2, 7)]
        assert q("SELECT count(*) FROM scores WHERE value IS NOT NULL AND (value < 0 OR value > 1)") == [(0,)]
        # summaries with CIs for every (model, method, metric, region); MPRT rows for the trained model
        assert q("SELECT count(*) FROM summary WHERE {D}")[0][0] == len(per)
        assert q("SELECT count(*) FROM summary WHERE n > 1 AND NOT (ci_low <= ci_high)") == [(0,)]
        assert q("SELECT count(DISTINCT method), count(DISTINCT step), count(DISTINCT image_id) FROM sanity "
                 "WHERE {D}") == [(n_methods, 6, 4)]
        # the other demo sets: pretraining strategies, ultrasound lesions, the confounder's marker region
        assert {r[0] for r in q("SELECT strategy FROM models")} >= {"random", "supervised", "dino", "mae"}
        pre = q("SELECT strategy, json_extract_string(hparams, '$.pretraining.strategy'), "
                "CAST(json_extract_string(hparams, '$.pretraining.steps') AS INTEGER) FROM models "
                "WHERE strategy IN ('supervised', 'dino', 'mae')")
        assert len(pre) == 3 and all(s == ps and steps > 0 for s, ps, steps in pre), pre  # pretraining recorded
        regions = dict(q("SELECT d.name, list(DISTINCT s.region ORDER BY s.region) FROM scores s "
                         "JOIN datasets d USING (dataset_id) GROUP BY d.name"))
        assert {"lesion", "box"} <= set(regions["demo_ultrasound"])
        assert {"lesion", "marker"} <= set(regions["demo_confounded"])
        assert q("SELECT count(*) FROM failures") == [(0,)]
        return q("SELECT count(*) FROM scores")[0][0]


def test_cli_help_lists_subcommands(tmp_path):
    proc = _run(["--help"], tmp_path)
    assert proc.returncode == 0 and "demo" in proc.stdout and "status" in proc.stdout
    missing = _run(["status", "--db", str(tmp_path / "none.duckdb")], tmp_path)
    assert missing.returncode == 1 and "engine demo" in missing.stdout
