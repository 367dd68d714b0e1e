"""The only code that writes the results database.

Layout (docs/schema.md, schema 7): ``<db>`` is a small DuckDB *catalog* holding ``meta`` and one view
per table over immutable Parquet files in ``<db>.shards/`` (engine/store/shards.py).  DuckDB allows one
writer *or* readers on a file, so the writer never opens the live catalog for writing:

1. it resolves ``--db`` once (a symbolic link is followed to the real file: the lock, the catalog and
   the shards all live beside the real file), takes an exclusive lock on ``<db>.lock`` (a second writer
   waits up to ``lock_timeout`` s, then is refused), refuses a damaged, foreign, newer or too-old file
   (engine/store/check.py) before writing anything, and marks runs left ``running`` by a dead process
   as ``interrupted``;
2. it loads the bookkeeping tables (``HELD``: runs, jobs, summary, ...) into memory (engine/store/migrate.py
   for older layouts); rows of the per-image tables (``SHARDED``) wait in memory until the publish;
3. a publish (:meth:`commit`, at most once per ``publish_every`` seconds: engine/store/group_commit.py)
   writes each per-image table's new rows as one new Parquet file and each held table's changed rows as
   another (engine/store/held.py), all fsynced, merges files when a level holds ``FAN_IN`` of them, then
   writes the catalog (``meta`` and the views over the new file lists) to ``<db>.staging-<pid>`` in one
   commit without a write-ahead log, fsyncs it and atomically renames it over the live one.
   Readers that opened the old catalog keep their snapshot (its files are kept ``GRACE_S`` seconds);
   a crash before the rename leaves the live database as it was.  A commit with nothing new writes
   nothing, and a publish that would produce the same catalog writes no new one.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import duckdb
import pandas as pd

from . import held, migrate
from .check import DatabaseRefused, DbInfo, check_database
from .db import connect, sql_str
from .group_commit import GroupCommit, serialised, writes
from .identity import utc_now
from .lock import RunLock, WriterBusy, signals_deferred
from .schema import (
    HELD,
    PARQUET,
    REPLACE_KEYS,
    SCHEMA_VERSION,
    SHARDED,
    columns,
    create_schema,
    primary_key,
)
from .shards import (
    FOLDER_KEY,
    MANIFEST_KEY,
    Manifest,
    Shard,
    collect_garbage,
    group_hash_sql,
    key_condition,
    plan_merges,
    scan_sql,
    shard_dir,
    write_shard,
)
from .shards import (
    fsync as _fsync,
)
from .writer_reads import WriterReads

log = logging.getLogger(__name__)

CATALOG_BLOCK_SIZE = 16384   # the catalog is small: 16 KiB blocks instead of DuckDB's 256 KiB

__all__ = ["ResultWriter", "WriterBusy", "DatabaseRefused", "canonical_json"]


def canonical_json(obj) -> str:
    return json.dumps(obj or {}, sort_keys=True, separators=(",", ":"), default=str)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ResultWriter(GroupCommit, WriterReads):
    def __init__(self, db_path: str | Path, lock_timeout: float = 0.0, lock: RunLock | None = None,
                 publish_every: float = 0.0):
        """``lock``: the database's :class:`RunLock`, already held by the caller (who releases it);
        without it the writer takes the lock itself, waiting up to ``lock_timeout`` seconds.

        ``publish_every``: at most one publish per this many seconds (group commit).  0: every
        :meth:`commit` publishes.  Otherwise a commit within the interval only marks the end of a unit,
        and a timer thread publishes every unit finished so far once the interval has passed (never in
        the middle of a unit's writes): readers see a finished unit at most ``publish_every`` seconds
        late, and a ``kill -9`` loses at most the units of that last interval (the next run redoes them)."""
        self.db_path = Path(os.path.realpath(db_path))   # resolved once: lock and publish on the real file
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.folder = shard_dir(self.db_path)
        self.lock_timeout = lock_timeout
        self._given_lock = lock
        self._own_lock: RunLock | None = None
        self.own_runs: set[str] = set()   # this process's runs: never marked interrupted at open
        # the new catalog is written here, then renamed over the live one
        self.staging = self.db_path.with_name(f"{self.db_path.name}.staging-{os.getpid()}")
        self.con: duckdb.DuckDBPyConnection | None = None
        self.manifest = Manifest()
        self.interrupted_runs: list[str] = []
        self._dirty = False            # something to publish at the next commit
        self._unpublished: set[str] = set()   # shard files written in this session, not yet in a live catalog
        self._superseded: list[str] = []      # live files the next catalog no longer lists
        self._runs_at_open: list = []
        self._live_meta: dict | None = None   # meta of the live catalog (an unchanged one is not rewritten)
        self.bytes_written = 0         # shard files and catalogs written by this writer (bench/publish_cost.py)
        self.publishes = 0
        self._init_group_commit(publish_every)

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> "ResultWriter":
        self._lock()
        self._last_publish = time.monotonic()
        try:
            info = check_database(self.db_path)   # before anything is written
            for stale in self.db_path.parent.glob(f"{self.db_path.name}.staging-*"):
                log.info("removing %s left by an interrupted run", stale)
                stale.unlink(missing_ok=True)
            self._open_catalog(info)
        except BaseException:
            if self.con is not None:
                self.con.close()
                self.con = None
            self.staging.unlink(missing_ok=True)
            self._unlock()
            raise
        return self

    def _lock(self) -> None:
        if self._given_lock is None or not self._given_lock.held:
            self._own_lock = RunLock(self.db_path).acquire(self.lock_timeout)

    def _unlock(self) -> None:
        if self._own_lock is not None:
            self._own_lock.release()
            self._own_lock = None

    def _open_catalog(self, info: DbInfo) -> None:
        self.folder.mkdir(exist_ok=True)
        self.con = connect()
        # the new catalog is written straight into its file at its one commit, without a write-ahead log (the
        # file is fsynced and renamed into place afterwards, so the log's guarantee is not needed; it doubled
        # the bytes of every publish)
        self.con.execute("SET checkpoint_threshold = '0b'")
        self.con.execute("SET auto_checkpoint_skip_wal_threshold = 0")
        self.con.execute("ATTACH ':memory:' AS cat")   # the catalog is small: it is edited in memory
        self.con.execute("USE cat")
        create_schema(self.con, skip=SHARDED)
        if info.sharded:
            self.manifest = info.manifest
            if info.folder != self.folder:   # a catalog copied without its folder: bring the files beside it
                log.info("%s: copying its %d shard files from %s", self.db_path, len(self.manifest.files()),
                         info.folder)
                for name in self.manifest.files():
                    shutil.copyfile(info.folder / name, self.folder / name)
                    self._new_file(name)
                self._dirty = True
            migrate.load_catalog(self)
            if collect_garbage(self.folder, self.manifest):
                log.info("removed superseded shard files of %s", self.db_path)
        else:   # a new database, or one of schema version <= 4 (every table inside the DuckDB file)
            collect_garbage(self.folder, self.manifest)
            for t in HELD:
                held.load(self.con, t, None, published=False)
            self._dirty = True
        if info.exists and not info.sharded:
            migrate.migrate_legacy(self)
        for t in SHARDED:
            cols = ", ".join(f"{c} {typ}" for c, typ in columns(t))
            self.con.execute(f"CREATE TABLE memory.main.stage_{t} ({cols})")
        self._refresh_views()
        if info.version != SCHEMA_VERSION:
            self._dirty = True
        self.interrupted_runs = [r[0] for r in self.con.execute(
            "UPDATE runs SET status = 'interrupted', finished_at = coalesce(finished_at, ?) "
            "WHERE status = 'running' AND NOT list_contains(?, run_id) RETURNING run_id",
            [utc_now(), sorted(self.own_runs)]).fetchall()]
        if self.interrupted_runs:
            log.warning("marked %d run(s) interrupted (their process died): %s", len(self.interrupted_runs),
                        ", ".join(self.interrupted_runs))
            self._dirty = True
        self._runs_at_open = self._runs()

    def _runs(self) -> list:
        return self.con.execute("SELECT * FROM runs ORDER BY run_id").fetchall()

    def _refresh_views(self) -> None:
        """The session's views of the sharded tables: this session's file list plus the rows waiting in
        memory (temporary views shadow the catalog's, so SQL on ``self.con`` sees what is written)."""
        for t in SHARDED:
            names = ", ".join(c for c, _ in columns(t))
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {t} AS {scan_sql(t, self.folder, self.manifest.tables[t])}"
                             f" UNION ALL SELECT {names} FROM memory.main.stage_{t}")

    def _flush(self) -> None:
        """Staged rows -> one new file per table; the changed rows of the held tables -> one new file each
        (files holding replaced rows rewritten without them); merge levels that are full."""
        for t in SHARDED:
            shard = write_shard(self.con, t, self.folder, f"SELECT * FROM memory.main.stage_{t}")
            if shard:
                self.manifest.tables[t].append(shard)
                self._new_file(shard.file)
                self.con.execute(f"DELETE FROM memory.main.stage_{t}")
        for t in HELD:
            self._flush_held(t)
        for t in PARQUET:
            while merges := plan_merges(self.manifest.tables[t]):
                for group in merges:
                    merged = write_shard(self.con, t, self.folder, scan_sql(t, self.folder, group), group[0].level + 1)
                    self._swap(t, group, merged)

    def _flush_held(self, table: str) -> None:
        try:
            n_new, n_out = held.changes(self.con, table)
            if not n_new and not n_out:
                return
            if n_out:
                for s in held.holding(self.con, table, self.folder, self.manifest.tables[table]):
                    kept = write_shard(self.con, table, self.folder, held.without_out(table, self.folder, s), s.level)
                    self._swap(table, [s], kept)
            shard = write_shard(self.con, table, self.folder, "SELECT * FROM temp._chg")
            if shard:
                self.manifest.tables[table].append(shard)
                self._new_file(shard.file)
            held.advance(self.con, table)
        finally:
            held.drop_temp(self.con)

    def _swap(self, table: str, old: list[Shard], new: Shard | None) -> None:
        """Replace files ``old`` of ``table`` by ``new`` (None: they are gone) in this session's list."""
        shards = self.manifest.tables[table]
        at = shards.index(old[0])
        names = {s.file for s in old}
        kept = [s for s in shards if s.file not in names]
        if new is not None:
            kept.insert(min(at, len(kept)), new)
            self._new_file(new.file)
        self.manifest.tables[table] = kept
        for name in names:
            if name in self._unpublished:   # never published: nobody can be reading it
                (self.folder / name).unlink(missing_ok=True)
                self._unpublished.discard(name)
            else:
                self._superseded.append(name)

    def _new_file(self, name: str) -> None:
        self._unpublished.add(name)
        self.bytes_written += (self.folder / name).stat().st_size

    @serialised
    def size(self) -> int:
        """Bytes of the published database: the catalog and the shard files it lists."""
        live = self.db_path.stat().st_size if self.db_path.exists() else 0
        return live + sum(s.bytes for ss in self.manifest.tables.values() for s in ss)

    def _publish(self) -> None:
        """Write the new files, point the views at them and rename the new catalog over the live one
        (SIGTERM / Ctrl-C wait until the files are consistent again)."""
        with signals_deferred():
            self._publish_now()

    def _publish_now(self) -> None:
        self._flush()
        now = time.time()
        self.manifest.garbage += [(name, now) for name in self._superseded]
        meta = {"schema_version": str(SCHEMA_VERSION), MANIFEST_KEY: self.manifest.to_json(),
                FOLDER_KEY: str(self.folder)}
        if meta == self._live_meta and self.db_path.is_file():   # rows rewritten as they were: no new catalog
            self._published()
            return
        self.con.executemany("INSERT OR REPLACE INTO cat.main.meta VALUES (?, ?)", list(meta.items()))
        _fsync_dir(self.folder)
        self.staging.unlink(missing_ok=True)
        # the catalog: meta (no key index: nobody writes it in place) and one view per table over its files
        self.con.execute(f"ATTACH {sql_str(self.staging)} AS out (BLOCK_SIZE {CATALOG_BLOCK_SIZE})")
        try:
            self.con.execute("BEGIN")   # one commit: one checkpoint of the new file
            self.con.execute("CREATE TABLE out.main.meta AS SELECT key, value FROM cat.main.meta ORDER BY key")
            for t in PARQUET:
                self.con.execute(f"CREATE VIEW out.main.{t} AS {scan_sql(t, self.folder, self.manifest.tables[t])}")
            self.con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):   # a failed COMMIT has already rolled back
                self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.execute("DETACH out")
        _fsync(self.staging)
        self.bytes_written += self.staging.stat().st_size
        self.publishes += 1
        os.replace(self.staging, self.db_path)
        _fsync_dir(self.db_path.parent)
        self._live_meta = meta
        self._published()

    def _published(self) -> None:
        """Bookkeeping after a publish: the session's files are live, its views point at them."""
        self._unpublished.clear()
        self._superseded.clear()
        self._dirty = False
        self._last_publish = time.monotonic()
        self._cancel_timer()
        self._runs_at_open = self._runs()
        self._refresh_views()  # the session's views over the files just written (else it loses those rows)

    def close(self, commit: bool = True) -> None:
        """Publish what is written (``commit``; an error of the publish timer is raised first), or drop
        everything not yet published; release the lock."""
        with self._mutex:
            self._cancel_timer()
            try:
                if self.con is not None:
                    if commit:
                        self._raise_timer_error()
                        if self._dirty or self._runs() != self._runs_at_open:
                            self._publish()
                    self.con.close()
                    self.con = None
            finally:
                self._timer_error = None
                with signals_deferred():
                    self._close_unit()   # a signal held back by an unfinished unit: raised after the cleanup
                    for name in self._unpublished:   # written by a session that ends without publishing them
                        (self.folder / name).unlink(missing_ok=True)
                    self._unpublished.clear()
                    self.staging.unlink(missing_ok=True)
                    self._unlock()

    def __enter__(self) -> "ResultWriter":
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(commit=exc_type is None)

    # -- writes ------------------------------------------------------------------------------
    @writes
    def upsert(self, table: str, row: dict) -> None:
        """Insert or replace one row of a table with a primary key (runs, datasets, models, ...)."""
        pk = primary_key(table)
        if pk is None:
            raise ValueError(f"{table} has no primary key")
        cols = [c for c in row]
        vals = [canonical_json(v) if isinstance(v, dict) else v for v in row.values()]
        select = f"SELECT * FROM {table} WHERE {pk} IS NOT DISTINCT FROM ?"
        before = self.con.execute(select, [row.get(pk)]).fetchall()
        self.con.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) "
                         f"VALUES ({', '.join('?' for _ in cols)})", vals)
        # this run's own row is published with the next real change (or at close): not a change by itself
        if table != "runs" and self.con.execute(select, [row.get(pk)]).fetchall() != before:
            self._dirty = True

    @writes
    def finish_run(self, run_id: str, status: str, counts: dict | None = None) -> None:
        """Close a ``runs`` row: its final status, finish time (now) and job / item counts (bookkeeping:
        published with the next change, or when the writer closes)."""
        self.con.execute("UPDATE runs SET status = ?, finished_at = ?, counts = ? WHERE run_id = ?",
                         [status, utc_now(), json.dumps(counts or {}, sort_keys=True, separators=(", ", ": ")),
                          run_id])

    def clear_failures(self, job_key: str) -> None:
        """Forget the failures recorded for a job (a rerun of it replaces its old reasons)."""
        self.delete("failures", job_key=job_key)

    @writes
    def delete(self, table: str, **where) -> None:
        """Delete the rows of a catalog table matching every ``column=value`` given."""
        if table in SHARDED or not where:
            raise ValueError(f"delete: {table} with {where!r}")
        known = {c for c, _ in columns(table)}
        cond = " AND ".join(f"{c} IS NOT DISTINCT FROM ?" for c in where if c in known)
        n = self.con.execute(f"DELETE FROM {table} WHERE {cond}", list(where.values())).fetchone()[0]
        self._dirty |= n > 0

    @writes
    def replace_rows(self, table: str, df: pd.DataFrame) -> int:
        """Insert ``df``; rows with the same result key (REPLACE_KEYS) are replaced, never duplicated.
        Rows identical to the ones already stored change nothing (and make nothing to publish)."""
        if table not in REPLACE_KEYS:
            raise ValueError(f"{table} has no replace key")
        if df.empty:
            return 0
        cols = [c for c, _ in columns(table)]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{table}: missing columns {missing}")
        self.con.register("_incoming", df[cols])
        try:
            typed = ", ".join(f"CAST({c} AS {typ}) AS {c}" for c, typ in columns(table))
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE _in AS SELECT {typed} FROM _incoming")
        finally:
            self.con.unregister("_incoming")
        try:
            if table in SHARDED:
                self._replace_sharded(table, len(df))
            else:
                self._replace_catalog(table, cols)
        finally:
            self.con.execute("DROP TABLE IF EXISTS temp._in")
        return len(df)

    def _replace_catalog(self, table: str, cols: list[str]) -> None:
        cond = key_condition(table, "t", "i")
        self.con.execute("BEGIN")
        try:
            self.con.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM temp._in i WHERE {cond})")
            names = ", ".join(cols)  # by name: a migrated table has its new columns at the end
            self.con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM temp._in")
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        self._dirty = True

    def _replace_sharded(self, table: str, n: int) -> None:
        cond = key_condition(table, "t", "i")
        hit = f"EXISTS (SELECT 1 FROM temp._in i WHERE {cond})"
        staged = self.con.execute(f"DELETE FROM memory.main.stage_{table} t WHERE {hit}").fetchone()[0]
        groups = {r[0] for r in self.con.execute(f"SELECT DISTINCT {group_hash_sql(table)} FROM temp._in").fetchall()}
        candidates = [s for s in self.manifest.tables[table] if groups.intersection(s.groups)]
        holding = [s for s in candidates if self.con.execute(
            f"SELECT count(*) FROM ({scan_sql(table, self.folder, [s])}) t WHERE {hit}").fetchone()[0]]
        if holding and not staged:
            old = f"SELECT * FROM ({scan_sql(table, self.folder, holding)}) t WHERE {hit}"
            same = self.con.execute(f"SELECT (SELECT count(*) FROM ({old})) = {n} AND NOT EXISTS "
                                    f"(SELECT * FROM temp._in EXCEPT ALL {old})").fetchone()[0]
            if same:
                return   # the very rows stored already: nothing changes
        for s in holding:   # copy-on-write of the files holding replaced keys
            kept = write_shard(self.con, table, self.folder,
                               f"SELECT * FROM ({scan_sql(table, self.folder, [s])}) t WHERE NOT {hit}", s.level)
            self._swap(table, [s], kept)
        self.con.execute(f"INSERT INTO memory.main.stage_{table} SELECT * FROM temp._in")
        self._dirty = True
        if holding:
            self._refresh_views()
