"""Bringing an older results database into the writer's memory (engine/store/writer.py).

* versions 5 and 6: the per-image tables are Parquet shards already; the bookkeeping tables (``HELD``) are
  tables inside the catalog file: they are loaded from there and written as Parquet at the next publish;
* version 7: the held tables are loaded from their Parquet files;
* version 4 and older (every table inside the DuckDB file): the per-image tables are moved into one
  Parquet file each (level ``LEGACY_LEVEL``; its size tier keeps it apart from commit-sized files), the
  others row by row.

Columns an older file lacks stay NULL (the migration is additive; check.py refuses what it cannot carry).
"""
from __future__ import annotations

import logging

from . import held
from .db import sql_str
from .schema import HELD, SCHEMA_VERSION, SHARDED, TABLES, columns, primary_key
from .shards import scan_sql, write_shard

log = logging.getLogger(__name__)

LEGACY_LEVEL = 9             # a table moved out of a version <= 4 file (a label: merges go by size tier)


def load_catalog(w) -> None:
    """Load ``meta`` and the held tables of a catalog of version >= 5 into writer ``w``'s memory: from their
    Parquet files (version 7), or from the tables inside the catalog file (versions 5 and 6; written as
    files at the next publish).  Columns an older file lacks stay NULL."""
    w.con.execute(f"ATTACH {sql_str(w.db_path)} AS src (READ_ONLY)")
    try:
        kinds = dict(w.con.execute("SELECT table_name, table_type FROM information_schema.tables "
                                   "WHERE table_catalog = 'src' AND table_schema = 'main'").fetchall())
        w.con.execute("INSERT OR REPLACE INTO cat.main.meta SELECT key, value FROM src.main.meta")
        w._live_meta = dict(w.con.execute("SELECT key, value FROM cat.main.meta").fetchall())
        for t in HELD:
            if kinds.get(t) == "BASE TABLE":
                held.load(w.con, t, old_columns_sql(w.con, t), published=False)
            else:
                held.load(w.con, t, scan_sql(t, w.folder, w.manifest.tables[t]), published=True)
    finally:
        w.con.execute("DETACH src")


def old_columns_sql(con, table: str) -> str:
    """SELECT of ``table``'s declared columns from the attached older file ``src`` (NULL where it lacks one)."""
    old = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE "
                                     "table_catalog = 'src' AND table_name = ?", [table]).fetchall()}
    sel = ", ".join(c if c in old else f"CAST(NULL AS {typ}) AS {c}" for c, typ in columns(table))
    return f"SELECT {sel} FROM src.main.{table}"


def migrate_legacy(w) -> None:
    """Move the tables of a schema <= 4 file into this catalog: the sharded ones into one Parquet
    file each, the others row by row (columns the old file lacks stay NULL)."""
    log.info("%s: moving the per-image tables into Parquet shards (schema %d)", w.db_path, SCHEMA_VERSION)
    w.con.execute(f"ATTACH {sql_str(w.db_path)} AS src (READ_ONLY)")
    try:
        have = {r[0] for r in w.con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_catalog = 'src' AND table_schema = 'main'").fetchall()}
        for t in TABLES:
            if t not in have or t == "meta":
                continue
            if t in SHARDED:
                shard = write_shard(w.con, t, w.folder, old_columns_sql(w.con, t), LEGACY_LEVEL)
                if shard:
                    w.manifest.tables[t].append(shard)
                    w._new_file(shard.file)
            else:
                names = ", ".join(c for c, _ in columns(t))
                verb = "INSERT OR REPLACE" if primary_key(t) else "INSERT"
                w.con.execute(f"{verb} INTO cat.main.{t} ({names}) "
                              f"SELECT {names} FROM ({old_columns_sql(w.con, t)})")
    finally:
        w.con.execute("DETACH src")
