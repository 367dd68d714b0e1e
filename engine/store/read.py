"""What the runner reads back from a published database: whether it exists, its schema version and
the keys of finished jobs.  Short-lived read-only connections, so a reader never blocks the writer."""
from __future__ import annotations

import contextlib
from pathlib import Path

import duckdb

DEFAULT_DB = "data/results.duckdb"  # the results database when --db / XAI_DB do not say


@contextlib.contextmanager
def read_only(path: str | Path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def database_exists(path: str | Path) -> bool:
    """A readable DuckDB file holding the results schema (its ``scores`` table)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        with read_only(p) as con:
            return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'scores'"
                               ).fetchone()[0] == 1
    except duckdb.Error:
        return False


def schema_version(path: str | Path) -> int:
    with read_only(path) as con:
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
