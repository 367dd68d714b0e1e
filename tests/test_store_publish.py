"""What a publish writes (schema 7): the held tables (runs, jobs, summary, ...) as Parquet files that
change only where rows changed, a catalog of ``meta`` and views, migration of a version-6 catalog, and
group commit (``publish_every``): units published together, never half a unit."""
from __future__ import annotations

import json
import time

import duckdb
import numpy as np
import pandas as pd
from conftest import PROJECT_ROOT  # noqa: F401  (sys.path for the engine)

from engine.store import ResultWriter, check_database
from engine.store.schema import HELD, SCHEMA_VERSION, TABLES, columns


def _job(key: str, status: str = "done") -> dict:
    return {"job_key": key, "run_id": "r", "status": status}


def _summary(method: str, mean: float) -> pd.DataFrame:
    row = dict(dataset_id="d", model_id="m", method=method, method_version=1, method_params="{}",
               metric="pointing_game", metric_version=1, metric_params="{}", region="mask", n=3, mean=mean)
    return pd.DataFrame([{c: row.get(c) for c, _ in columns("summary")}])


def _published(db, table: str) -> list:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def _jobs(db) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT job_key, status FROM jobs ORDER BY ALL").fetchall()


def _files(db, table: str) -> list[str]:
    return [s.file for s in check_database(db).manifest.tables[table]]


def test_catalog_holds_meta_and_views_only(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.upsert("jobs", _job("a"))
    with duckdb.connect(str(db), read_only=True) as con:
        kinds = dict(con.execute("SELECT table_name, table_type FROM information_schema.tables").fetchall())
        assert kinds.pop("meta") == "BASE TABLE"
        assert set(kinds) == set(TABLES) - {"meta"} and set(kinds.values()) == {"VIEW"}
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        assert con.execute("SELECT job_key, status FROM jobs").fetchall() == [("a", "done")]
        assert con.execute("SELECT count(*) FROM pairwise").fetchone()[0] == 0   # a table without files reads empty
    assert not (tmp_path / "r.duckdb.wal").exists()


def test_a_publish_writes_only_the_rows_that_changed(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        for k in range(3):
            w.upsert("jobs", _job(f"j{k}"))
            w.commit()
    first = _files(db, "jobs")
    assert len(first) == 3
    with ResultWriter(db) as w:
        w.upsert("jobs", _job("j3"))                   # a new row: one new file of one row
        w.commit()
        assert _files(db, "jobs")[:3] == first
        w.upsert("jobs", _job("j1", "failed"))         # a changed row: only its file is rewritten
        w.commit()
    files = _files(db, "jobs")
    assert first[0] in files and first[2] in files and first[1] not in files
    assert [s.rows for s in check_database(db).manifest.tables["jobs"]] == [1, 1, 1, 1]
    assert _jobs(db) == [("j0", "done"), ("j1", "failed"), ("j2", "done"), ("j3", "done")]


def test_deleted_and_replaced_rows_leave_the_published_tables(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.replace_rows("summary", pd.concat([_summary("attention", 0.5), _summary("rollout", 0.25)]))
        w.replace_rows("failures", pd.DataFrame([{c: {"job_key": "j", "item": "x", "stage": "score"}.get(c)
                                                  for c, _ in columns("failures")}]))
    with ResultWriter(db) as w:
        w.replace_rows("summary", _summary("attention", 0.75))
        w.clear_failures("j")
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT method, mean FROM summary ORDER BY 1").fetchall() == [("attention", 0.75),
                                                                                       ("rollout", 0.25)]
    assert _published(db, "failures") == []


def test_published_held_tables_equal_the_writers_after_random_edits(tmp_path):
    """Property: whatever sequence of inserts, replacements and deletes, across publishes and reopenings,
    the published tables hold exactly the writer's rows."""
    rng = np.random.default_rng(0)
    db = tmp_path / "r.duckdb"
    for session in range(3):
        with ResultWriter(db) as w:
            for step in range(12):
                k = int(rng.integers(0, 8))
                op = rng.integers(0, 3)
                if op == 0:
                    w.upsert("jobs", _job(f"j{k}", str(rng.choice(["done", "failed"]))))
                elif op == 1:
                    w.replace_rows("summary", _summary(f"m{k}", float(rng.random())))
                else:
                    w.delete("jobs", job_key=f"j{k}")
                if rng.random() < 0.5:
                    w.commit()
                    for t in ("jobs", "summary"):
                        mine = w.con.execute(f"SELECT * FROM cat.main.{t} ORDER BY ALL").fetchall()
                        assert _published(db, t) == mine, (session, step, t)


def test_nothing_new_writes_nothing(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.upsert("jobs", _job("a"))
        w.replace_rows("summary", _summary("attention", 0.5))
    with ResultWriter(db) as w:
        w.upsert("jobs", _job("a"))                         # the same row again
        w.replace_rows("summary", _summary("attention", 0.5))
        w.commit()
        assert w.bytes_written == 0 and w.publishes == 0


def _downgrade_to_v6(db) -> None:
    """Rewrite a version-7 catalog the way version 6 stored it: the held tables inside the file."""
    with duckdb.connect(str(db)) as con:
        manifest = json.loads(con.execute("SELECT value FROM meta WHERE key = 'shards'").fetchone()[0])
        for t in HELD:
            con.execute(f"CREATE TABLE {t}_v6 AS SELECT * FROM {t}")
            con.execute(f"DROP VIEW {t}")
            con.execute(f"ALTER TABLE {t}_v6 RENAME TO {t}")
            manifest["tables"].pop(t, None)
        con.execute("UPDATE meta SET value = ? WHERE key = 'shards'", [json.dumps(manifest)])
        con.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")


def test_a_version_6_catalog_is_moved_into_parquet(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.upsert("jobs", _job("a"))
        w.replace_rows("summary", _summary("attention", 0.5))
    _downgrade_to_v6(db)
    before = {t: _published(db, t) for t in ("jobs", "summary")}
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'jobs'"
                           ).fetchone()[0] == "BASE TABLE"
    with ResultWriter(db) as w:
        w.upsert("jobs", _job("b"))
    assert check_database(db).version == SCHEMA_VERSION
    assert [k for k, _ in _jobs(db)] == ["a", "b"]
    assert _published(db, "jobs")[0] == before["jobs"][0]
    assert _published(db, "summary") == before["summary"]
    assert len(_files(db, "summary")) == 1


# -- group commit -----------------------------------------------------------------------------------
def test_group_commit_publishes_finished_units_together_within_the_interval(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db, publish_every=0.6) as w:
        w.upsert("jobs", _job("first"))
        w.commit(now=True)
        assert w.publishes == 1
        for k in range(3):                       # three units within the interval: not published yet
            w.upsert("jobs", _job(f"u{k}"))
            w.commit()
        assert w.publishes == 1 and [k for k, _ in _jobs(db)] == ["first"]
        time.sleep(1.2)                          # the timer publishes them, as one
        assert w.publishes == 2
        assert [k for k, _ in _jobs(db)] == ["first", "u0", "u1", "u2"]


def test_group_commit_never_publishes_half_a_unit(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db, publish_every=0.3) as w:
        w.upsert("jobs", _job("a"))
        w.commit()                               # within the interval of the open: deferred
        w.upsert("jobs", _job("b"))              # a unit being written when the timer fires
        time.sleep(0.8)
        assert w.publishes == 0 and not (tmp_path / "r.duckdb").exists()
        w.upsert("jobs", _job("c"))
        w.commit()                               # the end of the unit: the interval has passed
        assert w.publishes == 1
        assert [k for k, _ in _jobs(db)] == ["a", "b", "c"]


def test_close_without_commit_drops_the_deferred_units(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.upsert("jobs", _job("kept"))
    w = ResultWriter(db, publish_every=60).open()
    w.upsert("jobs", _job("dropped"))
    w.commit()
    w.close(commit=False)
    assert [k for k, _ in _jobs(db)] == ["kept"]
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "r.duckdb.shards").iterdir()) == ["jobs"]


def test_a_signal_during_a_units_writes_waits_for_its_commit(tmp_path):
    """SIGTERM while a unit's rows are being written is raised by the unit's commit, so no unit is ever
    half written when the run stops, and every finished unit is published by the close."""
    import os
    import signal

    import pytest

    from engine.runner.signals import SIGNALS, Interrupted, install_signal_handlers
    db = tmp_path / "r.duckdb"
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    install_signal_handlers()
    try:
        w = ResultWriter(db, publish_every=60, guard=SIGNALS).open()   # the runner's guard
        w.upsert("jobs", _job("finished"))
        w.commit()                                  # deferred: published only by the close below
        w.upsert("jobs", _job("half"))              # a unit's first write holds signals back
        os.kill(os.getpid(), signal.SIGTERM)
        w.upsert("jobs", _job("half-2"))            # ... so its writes go on
        with pytest.raises(Interrupted):
            w.commit()                              # and the signal surfaces at its end
        assert not w.in_unit
        w.close(commit=True)                        # what the runner does after an interrupt
    finally:
        for s, h in before.items():
            signal.signal(s, h)
    assert [k for k, _ in _jobs(db)] == ["finished", "half", "half-2"]


def test_a_version_6_catalog_moved_with_its_folder_still_reads_its_tables(tmp_path):
    """A v6 catalog keeps its bookkeeping tables inside the file: the views over the moved folder must not
    shadow them (they read as empty before the fix), for the CLI's reads and the dashboard's alike."""
    import shutil

    from engine.dashboard import queries
    from engine.store.read import read_only
    db = tmp_path / "a" / "r.duckdb"
    with ResultWriter(db) as w:
        w.upsert("jobs", _job("a"))
        w.upsert("datasets", {"dataset_id": "d@1", "name": "d"})
    _downgrade_to_v6(db)
    shutil.move(tmp_path / "a", tmp_path / "moved")
    moved = tmp_path / "moved" / "r.duckdb"
    with read_only(moved) as con:
        assert con.execute("SELECT job_key FROM jobs").fetchall() == [("a",)]
    counts = dict(queries.table_counts(moved).itertuples(index=False))
    assert counts["jobs"] == 1 and counts["datasets"] == 1


def test_group_commit_is_an_object_called_through_its_stated_interface():
    """GroupCommit sees only the Publisher and the Guard it is given (no writer state)."""
    from engine.store.group_commit import GroupCommit

    class Fake:
        def __init__(self):
            self.dirty, self.published, self.held = False, 0, 0

        def pending(self):
            return self.dirty

        def publish(self):
            self.published += 1
            self.dirty = False
            group.published()

        def publish_from_timer(self):
            self.publish()

        def is_open(self):
            return True

        def hold(self):
            self.held += 1

        def release(self):
            self.held -= 1

    fake = Fake()
    group = GroupCommit(60.0, publisher=fake, guard=fake)
    group.open_unit()
    assert group.in_unit and fake.held == 1          # a unit holds the guard until its commit
    group.commit()
    assert not group.in_unit and fake.held == 0 and fake.published == 0   # nothing pending: nothing published
    fake.dirty = True
    group.open_unit()
    group.commit()                                    # within the interval: deferred to the timer
    assert fake.published == 0 and fake.held == 0
    group.commit(now=True)
    assert fake.published == 1 and not fake.dirty
    group.close()
    immediate = GroupCommit(0.0, publisher=fake, guard=fake)
    group = immediate
    fake.dirty = True
    immediate.commit()
    assert fake.published == 2
