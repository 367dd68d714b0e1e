"""What the runner reads back from a published database: whether it exists, its schema version and
the keys of finished jobs, on short-lived read-only connections (the dashboard keeps one instance per
catalog version instead: engine/dashboard/reader.py); and the views a moved database needs."""
from __future__ import annotations

import contextlib
from pathlib import Path

import duckdb

from .db import connect
from .shards import FOLDER_KEY, MANIFEST_KEY, Manifest, locate, scan_sql, shard_dir

DEFAULT_DB = "data/results.duckdb"  # the results database when --db / XAI_DB do not say


@contextlib.contextmanager
def read_only(path: str | Path):
    """A read-only connection to the catalog of ``path`` (replacement scans and extension loading off)."""
    con = connect(path)
    try:
        for sql in moved_shard_views(con, Path(path)):
            con.execute(sql)
        yield con
    finally:
        con.close()


def moved_shard_views(con, path: Path) -> list[str]:
    """A database moved together with its ``.shards`` folder: its views still name the old folder, so a
    connection to it needs temporary views over the files beside it (the next run rewrites the views).
    The ``CREATE TEMP VIEW`` statements to run on each connection (a temporary view belongs to the one
    connection, or cursor, that created it); none for a database in place or without shards."""
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", [FOLDER_KEY]).fetchone()
    except duckdb.Error:
        return []   # no meta table (an older or foreign file): nothing to follow
    local = shard_dir(path.resolve())
    if not row or Path(row[0]) == local or not local.is_dir():
        return []
    manifest = Manifest.from_json(con.execute("SELECT value FROM meta WHERE key = ?", [MANIFEST_KEY]).fetchone()[0])
    if locate(path.resolve(), manifest, row[0]) != local:
        return []
    views = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW' "
                                       "AND table_catalog = current_database()").fetchall()}
    # only the catalog's views over files: a table stored inside an older catalog (version 5, 6) stays as it is
    return [f"CREATE OR REPLACE TEMP VIEW {table} AS {scan_sql(table, local, shards)}"
            for table, shards in manifest.tables.items() if table in views]


def database_exists(path: str | Path, connection=read_only) -> bool:
    """A readable DuckDB file holding the results schema (its ``scores`` table).  ``connection``: a context
    manager giving a read-only connection to a path (the dashboard passes its shared reader's cursor)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        with connection(p) as con:
            # >= 1: a database moved with its folder has a temporary view of that name over the moved files too
            return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'"
                               ).fetchone()[0] >= 1
    except duckdb.Error:
        return False


def schema_version(path: str | Path, connection=read_only) -> int:
    with connection(path) as con:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def done_job_keys(path: str | Path) -> set[str]:
    """Keys of the jobs recorded as done (empty for a missing database or one without a jobs table)."""
    if not database_exists(path):
        return set()
    with read_only(path) as con:
        if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'jobs'").fetchone()[0]:
            return set()
        return {r[0] for r in con.execute("SELECT job_key FROM jobs WHERE status = 'done'").fetchall()}
