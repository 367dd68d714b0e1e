"""Store: schema, replace-not-duplicate, atomic publish, single writer, parameterised queries."""
from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest
from conftest import PROJECT_ROOT
from score_rows import score_rows

from engine.dashboard import queries
from engine.store import ResultWriter, WriterBusy
from engine.store.schema import SCHEMA_VERSION, TABLES


def _scores(value, image="a"):
    return score_rows({image: value}, precision="fp32")


def test_schema_and_replace_keys(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.replace_rows("scores", _scores(1.0))
        w.replace_rows("scores", _scores(0.0))  # same key: replaced, not duplicated
        w.replace_rows("scores", _scores(None, image="b"))
    with duckdb.connect(str(db), read_only=True) as con:
        assert {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()} == set(TABLES)
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        rows = con.execute("SELECT image_id, value FROM scores ORDER BY image_id").fetchall()
    assert rows == [("a", 0.0), ("b", None)]


def test_older_database_is_migrated_additively(tmp_path):
    """A database from schema v3 (models without the new metric columns, no jobs table) opens,
    keeps its rows, and accepts rows of the current schema."""
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE models (model_id VARCHAR PRIMARY KEY, name VARCHAR, test_accuracy DOUBLE)")
        con.execute("INSERT INTO models VALUES ('m', 'vit', 0.5)")
        con.execute("CREATE TABLE scores (run_id VARCHAR, dataset_id VARCHAR, model_id VARCHAR, method VARCHAR, "
                    "method_version INTEGER, method_params VARCHAR, metric VARCHAR, metric_version INTEGER, "
                    "metric_params VARCHAR, image_id VARCHAR, value DOUBLE)")  # no region column
    with ResultWriter(db) as w:
        w.upsert("models", {"model_id": "n", "name": "vit", "test_accuracy": 0.9, "test_macro_f1": 0.8})
        w.replace_rows("scores", _scores(1.0))
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT model_id, test_macro_f1 FROM models ORDER BY 1").fetchall() == [("m", None),
                                                                                                  ("n", 0.8)]
        assert con.execute("SELECT region, value FROM scores").fetchall() == [("mask", 1.0)]
        assert con.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


def test_failed_run_leaves_live_database_untouched(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.replace_rows("scores", _scores(1.0))
    before = db.read_bytes()
    with pytest.raises(RuntimeError):
        with ResultWriter(db) as w:
            w.replace_rows("scores", _scores(0.5, image="z"))
            raise RuntimeError("crash mid-run")
    assert db.read_bytes() == before
    assert not list(tmp_path.glob("*.staging-*"))


HOLD_LOCK = """
import sys
from engine.store import ResultWriter
with ResultWriter(sys.argv[1]):
    print("ready", flush=True)
    sys.stdin.read()
"""


def test_second_writer_refused_with_clear_message(tmp_path):
    db = tmp_path / "r.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db)], cwd=PROJECT_ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(WriterBusy, match="another run is writing"):
            ResultWriter(db, lock_timeout=0.5).open()
    finally:
        holder.stdin.close()
        holder.wait(30)
    with ResultWriter(db, lock_timeout=5):  # free again once the first writer is done
        pass


def test_reader_open_while_writer_publishes(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.replace_rows("scores", _scores(1.0))
    reader = duckdb.connect(str(db), read_only=True)  # a dashboard query in flight
    try:
        with ResultWriter(db) as w:
            w.replace_rows("scores", _scores(0.25, image="b"))
            w.commit()
            w.replace_rows("scores", _scores(0.75, image="c"))
        assert reader.execute("SELECT count(*) FROM scores").fetchone()[0] == 1  # old snapshot
    finally:
        reader.close()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == 3


def test_queries_are_parameterised(fixture_db):
    opts = queries.score_options(fixture_db)
    ds = opts.dataset_id.iloc[0]
    assert len(queries.leaderboard(fixture_db, ds, "pointing_game", "mask")) == 4  # 2 models x 2 methods
    evil = "x' OR '1'='1"
    assert queries.leaderboard(fixture_db, evil, "pointing_game", "mask").empty
    assert queries.gallery(fixture_db, evil, evil, evil).empty
    with pytest.raises(ValueError):
        queries.gallery(fixture_db, ds, "m", "attention", outcome="; DROP TABLE scores")


def test_fixture_db_contents(fixture_db):
    counts = dict(queries.table_counts(fixture_db).itertuples(index=False))
    assert counts["predictions"] == 2 * 12
    assert counts["explanations"] == 2 * 2 * 12
    # models x methods x (2 localisation metrics x 2 regions + 2 faithfulness metrics) x images
    assert counts["scores"] == 2 * 2 * (2 * 2 + 2) * 12
    assert counts["curves"] == 2 * 2 * 2 * 12
    assert not queries.database_exists(fixture_db.parent / "missing.duckdb")


def test_writer_reads_back_every_published_row(tmp_path):
    """After each commit the writer's own session still sees every row (the runner's per-chunk summaries
    read the scores back through it): two commits, then both rows."""
    with ResultWriter(tmp_path / "r.duckdb") as w:
        w.replace_rows("scores", _scores(1.0, image="a"))
        w.commit()
        w.replace_rows("scores", _scores(0.5, image="b"))
        w.commit()
        back = w.scores_of("d", "m", ["image_id", "value"])
        assert sorted(back["image_id"]) == ["a", "b"]
        w.replace_rows("scores", _scores(0.25, image="c"))
        assert sorted(w.scores_of("d", "m", ["image_id"])["image_id"]) == ["a", "b", "c"]
