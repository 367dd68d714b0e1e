"""Is this file a results database we may read and write?  One line saying why not.

``check_database`` refuses, before anything is written to it:

* a *damaged* file: empty, truncated, a bad block checksum, a shard file missing or of the wrong size;
* a *foreign* file: not a DuckDB database at all (a SQLite file, a CSV), or a DuckDB database whose
  tables are not the results schema;
* a database written by a *newer* schema version than this engine's (it would be restamped and lose
  what the newer version relies on);
* a database *too old to migrate*: the migration only adds tables and columns, so a column whose type
  changed, or a key column missing from a table that holds rows, cannot be carried over.
"""
from __future__ import annotations

import contextlib
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .db import connect
from .schema import REPLACE_KEYS, SCHEMA_VERSION, TABLES, columns
from .shards import FOLDER_KEY, MANIFEST_KEY, Manifest, locate, shard_problem

DUCKDB_MAGIC = b"DUCK"   # bytes 8..12 of every DuckDB file


class DatabaseRefused(ValueError):
    """The --db file is damaged, foreign, newer or too old; the message is one line saying what to do."""


class DamagedDatabase(DatabaseRefused):
    """A read of the database failed (a file damaged after the check): the message is one sentence naming
    the file (:func:`read_failure`); the dashboard's queries raise it (engine/dashboard/cache.py)."""


@dataclass
class DbInfo:
    exists: bool
    version: int = 0               # 0: no version stamp (an empty DuckDB file, or one from before meta)
    sharded: bool = False          # the catalog + Parquet shards layout (schema version 5 and later)
    manifest: Manifest | None = None
    folder: Path | None = None     # where the shard files are (beside the file, or where a copy's original is)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def damaged(path, why: str) -> DatabaseRefused:
    return DatabaseRefused(f"{path}: damaged results database ({why}); restore it from a backup, or move it "
                           f"away and run again to start a new one (or use another --db)")


def damaged_shard(path, file: Path, why: str) -> DatabaseRefused:
    return DatabaseRefused(f"{path}: damaged results database: {file} {why}; `python -m engine verify --db {path} "
                           f"--repair` drops the jobs whose rows it held so the next run recomputes them "
                           f"(or restore it from a backup)")


def check_database(path: str | Path, deep: bool = True, ignore: frozenset[str] = frozenset()) -> DbInfo:
    """What ``path`` holds, or :class:`DatabaseRefused`.  ``deep`` reads every row of the tables kept in
    the DuckDB file (so a bad block checksum is found) and checks every shard file's size and checksum
    (but those named in ``ignore``: files a repair drops)."""
    p = Path(path)
    if not p.exists():
        return DbInfo(exists=False)
    if not p.is_file():
        raise DatabaseRefused(f"{p}: not a file; give --db the path of a results database file")
    with open(p, "rb") as fh:
        head = fh.read(16)
    if len(head) == 0:
        raise damaged(p, "the file is empty")
    if len(head) < 12 or head[8:12] != DUCKDB_MAGIC:
        kind = "a SQLite database" if head.startswith(b"SQLite format") else "not a DuckDB database"
        raise DatabaseRefused(f"{p}: not a results database ({kind}); choose another --db")
    try:
        con = connect(p, read_only=True)
    except duckdb.Error as exc:
        raise damaged(p, _first_line(exc)) from None
    with contextlib.closing(con):
        try:
            return _inspect(con, p, deep, ignore)
        except DatabaseRefused:
            raise
        except duckdb.Error as exc:
            raise damaged(p, _first_line(exc)) from None


def _inspect(con, p: Path, deep: bool, ignore: frozenset[str] = frozenset()) -> DbInfo:
    have = {r[0]: r[1] for r in con.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_catalog = 'db' AND table_schema = 'main'").fetchall()}
    if not have:
        return DbInfo(exists=True)   # a new, empty DuckDB file
    ours = set(have) & set(TABLES)
    if "meta" not in have and "scores" not in have and "runs" not in have:
        names = ", ".join(sorted(have)[:5]) + (", ..." if len(have) > 5 else "")
        raise DatabaseRefused(f"{p}: not a results database (it holds other tables: {names}); choose another --db")
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall()) if "meta" in have else {}
    try:
        version = int(meta.get("schema_version", 0))
    except ValueError:
        raise damaged(p, f"schema_version {meta['schema_version']!r} is not a number") from None
    if version > SCHEMA_VERSION:
        raise DatabaseRefused(f"{p}: written by a newer version of this tool (results schema {version}; this one "
                              f"reads and writes {SCHEMA_VERSION}); upgrade it (git pull; pip install -e .) or "
                              f"use another --db")
    info = DbInfo(exists=True, version=version, sharded=MANIFEST_KEY in meta)
    if info.sharded:
        try:
            info.manifest = Manifest.from_json(meta[MANIFEST_KEY])
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            raise damaged(p, f"unreadable shard list: {exc}") from None
        info.folder = locate(p, info.manifest, meta.get(FOLDER_KEY))
    stored = sorted(t for t in ours if have[t] != "VIEW")   # tables inside the file (views: over shard files)
    for table in stored:
        _check_migratable(con, p, table)
    if deep:
        for table in stored:
            con.execute(f"SELECT max(hash(t)) FROM {table} t").fetchone()
        if info.sharded:
            for table, shards in info.manifest.tables.items():
                for s in shards:
                    why = None if s.file in ignore else shard_problem(info.folder, s)
                    if why:
                        raise damaged_shard(p, info.folder / s.file, f"(shard of table {table}) {why}")
    return info


def _check_migratable(con, p: Path, table: str) -> None:
    """The additive migration can bring ``table`` up to date: no column changed type, and no key column is
    missing while the table holds rows (old rows would get NULL in their identity)."""
    found = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_catalog = 'db' AND table_schema = 'main' AND table_name = ?",
                             [table]).fetchall())
    declared = dict(columns(table))
    for col, typ in found.items():
        want = declared.get(col)
        if want is not None and not _same_type(typ, want):
            raise DatabaseRefused(f"{p}: too old to migrate ({table}.{col} is {typ}, this version stores "
                                  f"{want}); start a new database with another --db and run the experiment again")
    keys = REPLACE_KEYS.get(table, ())
    missing = [k for k in keys if k not in found]
    if missing and con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
        raise DatabaseRefused(f"{p}: too old to migrate ({table} rows lack the key column(s) {', '.join(missing)}); "
                              f"start a new database with another --db and run the experiment again")


def _same_type(found: str, declared: str) -> bool:
    f, d = found.upper().strip(), declared.upper().strip()
    aliases = {"JSON": {"JSON", "VARCHAR"}, "INTEGER": {"INTEGER", "INT", "INT4"}}
    return f == d or f in aliases.get(d, set())


def database_problem(path: str | Path) -> str | None:
    """One line saying why ``path`` cannot be read (damaged, foreign, newer, too old), or None (also for a
    missing file).  Checked once per version of the file (its modification time and size)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return None
    return _problem(str(p.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _problem(path: str, mtime_ns: int, size: int) -> str | None:
    return problem_now(path)


def problem_now(path: str | Path) -> str | None:
    """:func:`database_problem` without the cache (a shard file can be damaged while the catalog stays)."""
    try:
        check_database(path)
    except DatabaseRefused as exc:
        return str(exc)
    return None


def read_failure(path: str | Path, exc: BaseException) -> str:
    """One sentence for a read of ``path`` that failed (a query of the dashboard or ``status``): what the check
    finds wrong with the database, else the shard file the error names, else the error's first line."""
    problem = problem_now(path) if Path(path).is_file() else None
    if problem:
        return problem
    named = re.search(r"[^\s'\"]+\.parquet", str(exc))
    if named:
        return " ".join(str(damaged_shard(path, Path(named.group(0)), f"cannot be read ({_first_line(exc)})")).split())
    return " ".join(str(damaged(path, _first_line(exc))).split())
