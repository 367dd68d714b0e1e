"""The dashboard's shared reader (engine/dashboard/reader.py): one DuckDB instance per catalog version,
reused while the catalog is the live one, replaced after a publish (never a stale row), closed once its
last query ends; safe settings on every cursor; correct from several threads; a moved database reads."""
from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pandas as pd
import pytest
from conftest import PROJECT_ROOT  # noqa: F401  (sys.path for the engine)
from score_rows import score_rows

from engine.dashboard import queries, reader
from engine.store import ResultWriter
from engine.store.check import database_problem

COUNT = "SELECT count(*), coalesce(sum(value), 0) FROM scores"


def _rows(first: int, n: int) -> pd.DataFrame:
    """Scores of images ``first`` .. ``first + n - 1``, each image's value its number."""
    return score_rows({f"img {k:03d}": float(k) for k in range(first, first + n)}, method="rollout",
                      metric="iou_top5", region="box")


def _publish(db, first: int, n: int = 1) -> None:
    with ResultWriter(db) as w:
        w.replace_rows("scores", _rows(first, n))


def _count(db) -> tuple[int, float]:
    with reader.cursor(db) as cur:
        return cur.execute(COUNT).fetchone()


@pytest.fixture
def opened(monkeypatch):
    """Every instance the reader opens, in order (the cache emptied before and after)."""
    reader.clear()
    out = []
    real = reader._open

    def record(path, key):
        inst = real(path, key)
        out.append(inst)
        return inst

    monkeypatch.setattr(reader, "_open", record)
    yield out
    reader.clear()


def test_one_instance_per_catalog_version_replaced_after_a_publish(tmp_path, opened):
    db = tmp_path / "r.duckdb"
    _publish(db, 0, 3)
    assert _count(db) == (3, 3.0) and _count(db) == (3, 3.0)
    assert queries.table_counts(db).set_index("table_name").loc["scores", "rows"] == 3
    assert len(opened) == 1 and reader.cached() == {str(db.resolve()): reader.version(db)}   # reused
    _publish(db, 3, 2)
    assert _count(db) == (5, 10.0)        # the new rows at once: no stale snapshot
    assert len(opened) == 2 and opened[0].closed and not opened[1].closed
    assert reader.cached() == {str(db.resolve()): reader.version(db)}
    assert _count(db) == (5, 10.0) and len(opened) == 2


def test_a_running_query_keeps_its_snapshot_and_the_old_instance_closes_after_it(tmp_path, opened):
    db = tmp_path / "r.duckdb"
    _publish(db, 0, 2)
    with reader.cursor(db) as held:
        _publish(db, 2, 2)
        assert _count(db) == (4, 6.0)     # a new query: the new catalog
        assert held.execute(COUNT).fetchone() == (2, 1.0)   # the running one: its own snapshot
        assert opened[0].retired and not opened[0].closed
    assert opened[0].closed and not opened[1].closed


def test_at_most_a_couple_of_instances_are_kept(tmp_path, opened):
    dbs = [tmp_path / f"r{k}.duckdb" for k in range(reader.MAX_INSTANCES + 2)]
    for k, db in enumerate(dbs):
        _publish(db, 0, k + 1)
        assert _count(db)[0] == k + 1
    assert len(reader.cached()) == reader.MAX_INSTANCES
    assert [i.closed for i in opened] == [True] * 2 + [False] * reader.MAX_INSTANCES


def test_queries_from_several_threads_while_the_writer_publishes(tmp_path, opened):
    db = tmp_path / "r.duckdb"
    _publish(db, 0, 1)
    stop = threading.Event()

    def query(_):
        seen = []
        while not stop.is_set() or len(seen) < 5:
            n, total = _count(db)
            assert total == n * (n - 1) / 2, (n, total)   # a whole published version, never a mix
            seen.append(n)
            image = queries.image_view(db, "d", "m", "img 000")   # a page view: several queries, one cursor
            assert image[2]["value"].tolist() == [0.0]
        return seen

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(query, k) for k in range(4)]
        for k in range(1, 6):
            _publish(db, k)
        stop.set()
        seen = [f.result() for f in running]
    assert all(s == sorted(s) for s in seen)        # a thread never goes back to an older version
    assert _count(db) == (6, 15.0)
    assert len(opened) >= 2 and all(i.closed for i in opened if i is not reader._CACHE.get(str(db.resolve())))


def test_same_results_from_threads_at_once(tmp_path, opened):
    dbs = [tmp_path / f"r{k}.duckdb" for k in range(2)]
    for k, db in enumerate(dbs):
        _publish(db, 0, 10 * (k + 1))
    expected = {str(db): _count(db) for db in dbs}
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda k: (str(dbs[k % 2]), _count(dbs[k % 2])), range(120)))
    assert all(v == expected[p] for p, v in got) and expected[str(dbs[1])] == (20, 190.0)
    assert len(opened) == 2


def test_a_database_moved_with_its_shards_reads_through_every_cursor(tmp_path, opened):
    db = tmp_path / "a" / "r.duckdb"
    _publish(db, 0, 3)
    moved = tmp_path / "b"
    shutil.move(tmp_path / "a", moved)     # the views still name tmp_path/a/r.duckdb.shards, now gone
    for _ in range(3):                     # each query on a new cursor of the one cached instance
        assert _count(moved / "r.duckdb") == (3, 3.0)
    assert queries.image_view(moved / "r.duckdb", "d", "m", "img 001")[2]["value"].tolist() == [1.0]
    assert len(opened) == 1 and len(opened[0].setup) > 1


def test_a_damaged_database_is_not_read_from_the_cached_instance(tmp_path, opened):
    db = tmp_path / "r.duckdb"
    _publish(db, 0, 3)
    assert _count(db) == (3, 3.0)
    db.write_bytes(db.read_bytes()[:5000])   # truncated in place: same inode, a new size
    assert database_problem(db).startswith(f"{db}: damaged results database (")
    with pytest.raises(duckdb.Error):
        queries.table_counts(db)
    assert opened[0].closed


def test_a_missing_database_raises_duckdb_s_own_error(tmp_path, opened):
    with pytest.raises(duckdb.Error, match="does not exist"):
        queries.table_counts(tmp_path / "none.duckdb")
    assert reader.cached() == {} and all(i.closed for i in opened)


def test_safe_settings_hold_on_every_cursor(tmp_path, opened):
    db = tmp_path / "r.duckdb"
    _publish(db, 0, 1)
    frame_only = pd.DataFrame({"value": [99.0]})  # noqa: F841  (a replacement scan would read this frame)
    for _ in range(2):
        with reader.cursor(db) as cur:
            with pytest.raises(duckdb.CatalogException):
                cur.execute("SELECT * FROM frame_only").fetchall()
            assert cur.execute("SELECT value FROM scores").fetchall() == [(0.0,)]
            settings = dict(cur.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('python_enable_replacements', "
                "'autoinstall_known_extensions', 'autoload_known_extensions', 'parquet_metadata_cache')").fetchall())
    assert settings == {"python_enable_replacements": "false", "autoinstall_known_extensions": "false",
                        "autoload_known_extensions": "false", "parquet_metadata_cache": "true"}


def test_db_state_checks_through_the_reader_and_refuses_a_damaged_file_in_one_sentence(tmp_path, opened,
                                                                                       monkeypatch):
    from engine.dashboard import cache, db_state
    db = tmp_path / "r.duckdb"
    _publish(db, 0, 2)
    monkeypatch.setenv("XAI_DB", str(db))
    shown = []
    monkeypatch.setattr(cache.st, "error", shown.append)
    assert db_state().ready and db_state().ready
    assert len(opened) == 1 and reader.cached() == {str(db.resolve()): reader.version(db)}   # no new connection
    _publish(db, 2)
    assert db_state().ready and len(opened) == 2 and opened[0].closed
    db.write_bytes(db.read_bytes()[:5000])
    assert not db_state().ready
    assert len(shown) == 1 and shown[0].startswith(f"{db}: damaged results database (") and "\n" not in shown[0]


def test_a_symlink_and_its_target_share_one_instance_and_a_repointed_link_reads_the_new_target(tmp_path, opened):
    a, b, link = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "link.duckdb"
    _publish(a, 0, 2)
    _publish(b, 0, 5)
    link.symlink_to(a)
    assert _count(link) == _count(a) == (2, 1.0) and len(opened) == 1
    _publish(link, 2)                      # the writer publishes on the real file
    assert _count(a) == _count(link) == (3, 3.0) and len(opened) == 2
    link.unlink()
    link.symlink_to(b)
    assert _count(link) == (5, 10.0) and len(opened) == 3
