"""The *held* tables (``HELD`` in schema.py: runs, jobs, models, summary, pairwise, ...): kept whole in the
writer's memory, published as Parquet files that change only where rows changed.

The writer edits each held table as an ordinary DuckDB table in memory (``cat.main.<table>``, with its
primary key), and keeps beside it a snapshot of what the live catalog publishes (``memory.main.pub_<table>``).
At a publish, the difference between the two is all that is written:

* rows that are new or differ from the snapshot (``EXCEPT``) go into one new file;
* files that hold a published row whose key changed or disappeared are rewritten without those rows
  (copy-on-write; a file is never modified);
* the snapshot becomes the table.

So a publish writes the rows a unit added or changed (a few ``jobs`` rows, one chunk's ``summary`` rows),
never the whole table: before version 7 these tables lived inside the catalog file, which every publish
rewrote whole (the quick demo's catalog reached 570 KB, rewritten 101 times).
"""
from __future__ import annotations

from pathlib import Path

from .db import sql_str
from .schema import columns, primary_key, row_key
from .shards import Shard, key_condition, scan_sql


def snapshot(table: str) -> str:
    return f"memory.main.pub_{table}"


def load(con, table: str, source_sql: str | None, published: bool) -> None:
    """Fill ``cat.main.<table>`` (already created, empty) from ``source_sql`` (a SELECT of its declared
    columns, or None: empty) and create its snapshot: a copy when the rows come from this table's
    Parquet files (``published``), empty otherwise (rows moved from an older catalog are written at the
    next publish)."""
    names = ", ".join(c for c, _ in columns(table))
    if source_sql is not None:   # OR REPLACE: a key repeated across files cannot make the database unopenable
        verb = "INSERT OR REPLACE" if primary_key(table) else "INSERT"
        con.execute(f"{verb} INTO cat.main.{table} ({names}) SELECT {names} FROM ({source_sql})")
    cols = ", ".join(f"{c} {typ}" for c, typ in columns(table))
    con.execute(f"CREATE OR REPLACE TABLE {snapshot(table)} ({cols})")
    if published:
        con.execute(f"INSERT INTO {snapshot(table)} SELECT {names} FROM cat.main.{table}")


def changes(con, table: str) -> tuple[int, int]:
    """Stage the difference of ``table`` against its snapshot in temporary tables ``_chg`` (rows to
    write) and ``_out`` (keys whose published rows must leave their files); their row counts."""
    keys = ", ".join(row_key(table))
    names = ", ".join(c for c, _ in columns(table))
    cur, pub = f"cat.main.{table}", snapshot(table)
    # set difference: rows repeated exactly carry nothing (a repeat would otherwise be written at every publish)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _chg AS SELECT {names} FROM {cur} EXCEPT SELECT {names} FROM {pub}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _out AS "
                f"(SELECT {keys} FROM _chg INTERSECT SELECT {keys} FROM {pub}) "
                f"UNION (SELECT {keys} FROM {pub} EXCEPT SELECT {keys} FROM {cur})")
    return (con.execute("SELECT count(*) FROM _chg").fetchone()[0],
            con.execute("SELECT count(*) FROM _out").fetchone()[0])


def holding(con, table: str, folder: Path, shards: list[Shard]) -> list[Shard]:
    """The files of ``table`` that hold a row whose key is in ``_out`` (one scan of the key columns of
    every file; key columns are in every file, so no column reconciliation is needed)."""
    if not shards:
        return []
    files = ", ".join(sql_str(folder / s.file) for s in shards)
    hit = {r[0] for r in con.execute(
        f"SELECT DISTINCT filename FROM read_parquet([{files}], filename = true, union_by_name = true) t "
        f"WHERE EXISTS (SELECT 1 FROM _out o WHERE {key_condition(table, 't', 'o')})").fetchall()}
    return [s for s in shards if str(folder / s.file) in hit]


def without_out(table: str, folder: Path, shard: Shard) -> str:
    """SELECT of the rows of ``shard`` whose key is not in ``_out`` (what a copy-on-write keeps)."""
    return (f"SELECT * FROM ({scan_sql(table, folder, [shard])}) t "
            f"WHERE NOT EXISTS (SELECT 1 FROM _out o WHERE {key_condition(table, 't', 'o')})")


def advance(con, table: str) -> None:
    """The snapshot becomes what was just published."""
    pub = snapshot(table)
    con.execute(f"DELETE FROM {pub} p WHERE EXISTS (SELECT 1 FROM _out o WHERE {key_condition(table, 'p', 'o')})")
    con.execute(f"INSERT INTO {pub} SELECT * FROM _chg")


def drop_temp(con) -> None:
    con.execute("DROP TABLE IF EXISTS temp._chg")
    con.execute("DROP TABLE IF EXISTS temp._out")

