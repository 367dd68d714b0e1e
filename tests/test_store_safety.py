"""Store guarantees: symlinked --db, damaged / foreign / newer / too-old databases refused before anything
is written, safe connection settings, stale runs marked interrupted, shard replacement, merging and
no-op commits that write nothing."""
from __future__ import annotations

import sqlite3

import duckdb
import pandas as pd
import pytest
from conftest import PROJECT_ROOT  # noqa: F401  (sys.path for the engine)
from runner_fixtures import run_cli
from score_rows import score_rows

from engine.store import DatabaseRefused, ResultWriter, WriterBusy, check_database
from engine.store import shards as shards_mod
from engine.store.read import read_only
from engine.store.schema import SCHEMA_VERSION, create_schema


def _scores(values: dict[str, float | None], model="m", run="r") -> pd.DataFrame:
    return score_rows(values, model_id=model, run_id=run)


def _rows(db, sql="SELECT model_id, image_id, value FROM scores ORDER BY ALL"):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.endswith(".lock")}


# -- symbolic links -----------------------------------------------------------------------------
def test_symlinked_db_is_resolved_once_and_locked_and_published_on_the_real_file(tmp_path):
    real_dir = tmp_path / "store"
    real_dir.mkdir()
    real = real_dir / "results.duckdb"
    link = tmp_path / "link.duckdb"
    link.symlink_to(real)
    with ResultWriter(link) as w:
        assert w.db_path == real
        w.replace_rows("scores", _scores({"a": 1.0}))
        w.commit()
        with pytest.raises(WriterBusy):  # the target and the link share one lock
            ResultWriter(real).open()
    assert link.is_symlink() and real.is_file()
    assert (real_dir / "results.duckdb.lock").exists() and not (tmp_path / "link.duckdb.lock").exists()
    with ResultWriter(real) as w:
        w.replace_rows("scores", _scores({"b": 0.0}))
    assert link.is_symlink()
    assert _rows(link) == [("m", "a", 1.0), ("m", "b", 0.0)]


# -- refused databases --------------------------------------------------------------------------
def _refused(db, match):
    before = _snapshot(db.parent)
    with pytest.raises(DatabaseRefused, match=match) as err:
        ResultWriter(db).open()
    assert "\n" not in str(err.value)
    assert _snapshot(db.parent) == before  # nothing written, nothing removed
    return str(err.value)


def _legacy(db, rows=0):
    """A schema-4 style file: every table inside the DuckDB file."""
    with duckdb.connect(str(db)) as con:
        create_schema(con)
        con.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
        if rows:
            con.execute("INSERT INTO scores (run_id, dataset_id, model_id, method, method_version, method_params, "
                        "metric, metric_version, metric_params, region, image_id, value) "
                        "SELECT 'r', 'd', 'm' || (i % 7), 'attention', 1, '{}', 'pointing_game', 1, "
                        "'{}', 'mask', 'img' || i, random() FROM range(?) t(i)", [rows])


def test_truncated_database_is_refused(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.replace_rows("scores", _scores({"a": 1.0}))
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])
    assert "damaged results database" in _refused(db, "damaged")
    db.write_bytes(b"")
    _refused(db, "damaged results database \\(the file is empty\\)")


def test_bad_checksum_is_refused(tmp_path):
    db = tmp_path / "r.duckdb"
    _legacy(db, rows=300_000)
    data = bytearray(db.read_bytes())
    for off in range(3 * 262144 + 64, len(data) - 262144, 262144):  # one byte in every data block
        data[off] ^= 0xFF
    db.write_bytes(bytes(data))
    _refused(db, "damaged results database")


def test_missing_shard_is_refused(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.replace_rows("scores", _scores({"a": 1.0}))
    next((tmp_path / "r.duckdb.shards").glob("scores-*.parquet")).unlink()
    _refused(db, "shard .* is missing")


def test_foreign_databases_are_refused(tmp_path):
    db = tmp_path / "other.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE customers (id INTEGER)")
    assert "it holds other tables: customers" in _refused(db, "not a results database")
    lite = tmp_path / "lite.duckdb"
    with sqlite3.connect(lite) as con:
        con.execute("CREATE TABLE scores (x)")
    _refused(lite, "not a results database \\(a SQLite database\\)")
    text = tmp_path / "notes.duckdb"
    text.write_text("a,b\n1,2\n" * 10)
    _refused(text, "not a DuckDB database")


def test_newer_database_is_refused_not_restamped(tmp_path):
    db = tmp_path / "r.duckdb"
    _legacy(db)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    msg = _refused(db, "newer version")
    assert f"results schema {SCHEMA_VERSION + 1}" in msg


def test_database_too_old_to_migrate_is_refused(tmp_path):
    db = tmp_path / "r.duckdb"
    with duckdb.connect(str(db)) as con:  # scores rows without the region key column
        con.execute("CREATE TABLE scores (run_id VARCHAR, dataset_id VARCHAR, model_id VARCHAR, method VARCHAR, "
                    "image_id VARCHAR, value DOUBLE)")
        con.execute("INSERT INTO scores VALUES ('r', 'd', 'm', 'attention', 'a', 1.0)")
    assert "region" in _refused(db, "too old to migrate")
    db2 = tmp_path / "r2.duckdb"
    with duckdb.connect(str(db2)) as con:  # a column whose type changed
        con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        con.execute("CREATE TABLE models (model_id VARCHAR PRIMARY KEY, test_accuracy VARCHAR)")
    _refused(db2, "too old to migrate \\(models.test_accuracy is VARCHAR")


@pytest.mark.slow  # end-to-end: `engine run` in a subprocess
def test_cli_run_refuses_a_foreign_database_with_exit_2(tmp_path):
    db = tmp_path / "other.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE customers (id INTEGER)")
    before = db.read_bytes()
    out = run_cli("run", PROJECT_ROOT / "data" / "experiments" / "demo_quick.toml", "--db", db, "--no-progress",
                  "--work-dir", tmp_path / "work", timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if "not a results database" in line]
    assert len(errors) == 1 and "Traceback" not in out.stderr
    assert db.read_bytes() == before and not (tmp_path / "work").exists()


def test_legacy_database_is_moved_into_shards_with_its_rows(tmp_path):
    db = tmp_path / "r.duckdb"
    _legacy(db, rows=1000)
    before = _rows(db)
    assert check_database(db).version == 4
    with ResultWriter(db) as w:
        w.replace_rows("scores", _scores({"new": 0.5}, model="n"))
    info = check_database(db)
    assert info.sharded and info.version == SCHEMA_VERSION
    assert _rows(db) == sorted(before + [("n", "new", 0.5)])


# -- connection settings ------------------------------------------------------------------------
def test_no_replacement_scans_and_no_extension_autoload(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.replace_rows("scores", _scores({"a": 1.0}))
    not_a_table = pd.DataFrame({"x": [1]})  # noqa: F841  (a Python global DuckDB must not resolve)
    with read_only(db) as con:
        with pytest.raises(duckdb.CatalogException):
            con.execute("SELECT * FROM not_a_table")
        assert con.execute("SELECT current_setting('autoinstall_known_extensions'), "
                           "current_setting('autoload_known_extensions')").fetchone() == (False, False)
    with ResultWriter(db) as w:
        with pytest.raises(duckdb.CatalogException):
            w.con.execute("SELECT * FROM not_a_table")


# -- stale runs ---------------------------------------------------------------------------------
def test_run_left_running_by_a_dead_process_is_marked_interrupted(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:  # what a killed run leaves published: its row still 'running'
        w.upsert("runs", {"run_id": "dead", "status": "running"})
        w.replace_rows("scores", _scores({"a": 1.0}))
    with ResultWriter(db) as w:
        assert w.interrupted_runs == ["dead"]
    assert _rows(db, "SELECT run_id, status, finished_at IS NOT NULL FROM runs") == [("dead", "interrupted", True)]


# -- shards -------------------------------------------------------------------------------------
def test_replacing_published_rows_rewrites_only_their_files(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.replace_rows("scores", _scores({"a": 1.0, "b": 2.0}, model="m"))
        w.commit()
        w.replace_rows("scores", _scores({"a": 5.0}, model="other"))
    with ResultWriter(db) as w:
        w.replace_rows("scores", _scores({"b": 0.0}, model="m"))  # one row of the first file
        assert w.scores_of("d", "m", ["image_id", "value"]).sort_values("image_id").value.tolist() == [1.0, 0.0]
        w.commit()
        w.replace_rows("scores", _scores({"b": None}, model="m"))  # again, now in a file of this session
    assert _rows(db) == [("m", "a", 1.0), ("m", "b", None), ("other", "a", 5.0)]
    manifest = check_database(db).manifest
    assert len(manifest.garbage) == 2  # the two superseded files: kept for readers of older catalogs
    shards_mod.collect_garbage(db.with_name("r.duckdb.shards"), manifest, now=manifest.garbage[0][1] + 1e9)
    assert manifest.garbage == []


def test_a_commit_with_nothing_new_writes_nothing(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.upsert("datasets", {"dataset_id": "d", "name": "smear"})
        w.replace_rows("scores", _scores({"a": 1.0, "b": 2.0}))
    before = _snapshot(tmp_path) | _snapshot(tmp_path / "r.duckdb.shards")
    with ResultWriter(db) as w:  # the same rows again
        w.upsert("datasets", {"dataset_id": "d", "name": "smear"})
        w.replace_rows("scores", _scores({"b": 2.0, "a": 1.0}))
        w.commit()
    assert _snapshot(tmp_path) | _snapshot(tmp_path / "r.duckdb.shards") == before


def test_files_of_a_level_are_merged(tmp_path, monkeypatch):
    monkeypatch.setattr(shards_mod, "FAN_IN", 3)
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        for i in range(7):
            w.replace_rows("scores", _scores({f"i{i}": float(i)}))
            w.commit()
        w.replace_rows("scores", _scores({"i1": -1.0}))  # a key now inside a merged file
    levels = sorted(s.level for s in check_database(db).manifest.tables["scores"])
    assert levels == [0, 0, 1, 1] or levels == [0, 1, 1, 1] or len(levels) < 7
    assert _rows(db) == sorted([("m", f"i{i}", float(i)) for i in range(7) if i != 1] + [("m", "i1", -1.0)])


def test_database_copied_alone_or_moved_with_its_folder(tmp_path):
    import shutil
    db = tmp_path / "a" / "r.duckdb"
    with ResultWriter(db) as w:
        w.replace_rows("scores", _scores({"a": 1.0}))
    alone = tmp_path / "copy.duckdb"  # the catalog alone: it reads the original's files, a run copies them
    alone.write_bytes(db.read_bytes())
    with ResultWriter(alone) as w:
        w.replace_rows("scores", _scores({"b": 2.0}))
    assert _rows(alone) == [("m", "a", 1.0), ("m", "b", 2.0)] and _rows(db) == [("m", "a", 1.0)]
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "a", moved)  # file and folder together: the old folder is gone
    from engine.dashboard import queries
    from engine.store import read
    assert dict(queries.table_counts(moved / "r.duckdb").itertuples(index=False))["scores"] == 1
    # the dashboard's and the CLI's first question (the views over the moved folder shadow the catalog's)
    assert queries.database_exists(moved / "r.duckdb") and read.database_exists(moved / "r.duckdb")
    status = run_cli("status", "--db", moved / "r.duckdb")
    assert status.returncode == 0 and "scores 1" in status.stdout, status.stdout + status.stderr
    with ResultWriter(moved / "r.duckdb") as w:
        w.replace_rows("scores", _scores({"c": 3.0}))
    assert _rows(moved / "r.duckdb") == [("m", "a", 1.0), ("m", "c", 3.0)]


# -- the dashboard says the same in one sentence ----------------------------------------------------
@pytest.mark.parametrize("kind", ["foreign", "truncated", "newer"])
def test_dashboard_explains_a_refused_database_in_one_sentence(kind, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    db = tmp_path / "r.duckdb"
    if kind == "foreign":
        with duckdb.connect(str(db)) as con:
            con.execute("CREATE TABLE customers (id INTEGER)")
        expected = "not a results database"
    elif kind == "truncated":
        with ResultWriter(db) as w:
            w.replace_rows("scores", _scores({"a": 1.0}))
        db.write_bytes(db.read_bytes()[:5000])
        expected = "damaged results database"
    else:
        _legacy(db)
        with duckdb.connect(str(db)) as con:
            con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        expected = "newer version"
    monkeypatch.setenv("XAI_DB", str(db))
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=90)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and expected in errors[0] and "\n" not in errors[0]
