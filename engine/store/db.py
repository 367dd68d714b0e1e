"""Every DuckDB connection of the project opens here, with the same safety settings.

* no Python replacement scans: a table name that is missing from the database is an error, never a
  pandas DataFrame or other Python global of the same name in the calling frame;
* no extension auto-install or auto-load: opening a foreign file (a SQLite database, say) never
  downloads or loads an extension (parquet and json are compiled into the Python package).

These settings are global to the DuckDB database instance, so they hold on every ``cursor()`` of a
connection too (the dashboard's shared reader, engine/dashboard/reader.py, queries through cursors).
"""
from __future__ import annotations

from pathlib import Path

import duckdb

SAFE_CONFIG = {"python_enable_replacements": False, "autoinstall_known_extensions": False,
               "autoload_known_extensions": False}
ALIAS = "db"   # the name the attached file has; a connection (and each cursor: USE is per connection) selects it
# a long-lived reader keeps every Parquet footer it parsed (the shard files never change: new rows, new file)
METADATA_CACHE = "SET GLOBAL parquet_metadata_cache = true"   # a parquet setting: refused in connect's config


def connect(path: str | Path | None = None, read_only: bool = True,
            metadata_cache: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with ``path`` attached (read-only by default) and selected as the default
    database.  Attaching instead of ``duckdb.connect(path)`` keeps these settings independent of any other
    connection this process has to the same file (DuckDB refuses a second configuration of one file).
    ``metadata_cache``: keep parsed Parquet footers for the life of this database instance."""
    con = duckdb.connect(":memory:", config=dict(SAFE_CONFIG))
    con.execute("SET enable_progress_bar = false")   # no bars on the run's stderr from long COPYs
    if metadata_cache:
        con.execute(METADATA_CACHE)
    if path is not None:
        try:
            con.execute(f"ATTACH {sql_str(path)} AS {ALIAS}{' (READ_ONLY)' if read_only else ''}")
            con.execute(f"USE {ALIAS}")
        except BaseException:
            con.close()
            raise
    return con


def sql_str(value: str | Path) -> str:
    """A single-quoted SQL string literal (file paths in COPY / read_parquet / ATTACH)."""
    return "'" + str(value).replace("'", "''") + "'"
