"""The dashboard's reader: one DuckDB database instance per *version* of the catalog, shared by every query.

Opening a connection reads the catalog and binding its views reads every Parquet footer again; a page
of queries paid that on each query.  So the process keeps, per database, one in-memory DuckDB instance
with the catalog attached read-only and Parquet footers cached (``parquet_metadata_cache``), and each
query runs on its own ``cursor()`` of it (a cursor is a connection of its own: Streamlit runs sessions
in threads).

Why a long-lived instance is safe with the batch writer (engine/store/writer.py): the writer never
opens the live catalog; it writes a new catalog file and renames it over ``<db>``.  An instance holds
the file it attached (its inode), never the name, so it neither blocks the writer nor sees a torn state:
it reads one published version, whose shard files are immutable and kept ``GRACE_S`` (1 h) after a
newer catalog supersedes them.  Queried more than an hour after that, an instance of a superseded catalog
could name deleted files (the query fails with DuckDB's "no such file" error, never with wrong rows), so
it is never used for a new query: every query first stats ``<db>`` and uses the
instance only if the file is still the one it attached (same resolved path, inode, mtime and size).
Otherwise the next query opens a new instance and the old one is retired: closed as soon as the queries
still running on it end (they finish on their snapshot).  At most ``MAX_INSTANCES`` are kept (least
recently used retired first), so the dashboard holds at most a couple of catalogs' memory.

The state is one process-wide dict behind one lock (``_LOCK``); opening an instance happens outside it.
The runner's own reads (engine/store/read.py) stay on short connections.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..store.db import ALIAS, connect
from ..store.read import moved_shard_views

log = logging.getLogger(__name__)

MAX_INSTANCES = 2      # catalogs kept open (one per database; a second for a second database)
OPEN_TRIES = 3         # a publish between the stat and the ATTACH: stat again and reopen


@dataclass(eq=False)
class Instance:
    """One DuckDB database instance with one version of a catalog attached read-only."""
    key: tuple | None              # (resolved path, inode, mtime_ns, size); None: a one-off, closed after use
    con: duckdb.DuckDBPyConnection
    setup: list[str] = field(default_factory=list)   # run on each cursor: USE the catalog, moved-shard views
    users: int = 0                 # queries running on it
    retired: bool = False          # superseded or evicted: no new query; closed when ``users`` drops to 0
    closed: bool = False


_LOCK = threading.Lock()                       # guards _CACHE and every Instance's users / retired / closed
_CACHE: OrderedDict[str, Instance] = OrderedDict()   # resolved path -> its newest instance, least recent first


def version(path: str | Path) -> tuple | None:
    """(resolved path, inode, mtime_ns, size) of the catalog file ``path`` now; None when it cannot be stat'ed."""
    real = Path(path).resolve()
    try:
        st = os.stat(real)
    except OSError:
        return None
    return str(real), st.st_ino, st.st_mtime_ns, st.st_size


def _open(path: Path, key: tuple | None) -> Instance:
    con = connect(path, metadata_cache=True)
    try:
        views = moved_shard_views(con, path)
    except BaseException:
        con.close()
        raise
    return Instance(key, con, [f"USE {ALIAS}", *views])


def _close(inst: Instance) -> None:
    """Close ``inst`` (call with _LOCK held, once no query uses it)."""
    if not inst.closed:
        inst.closed = True
        inst.con.close()
        log.debug("closed the reader of %s", inst.key)


def _retire(inst: Instance) -> None:
    inst.retired = True
    if inst.users == 0:
        _close(inst)


def _take(inst: Instance) -> duckdb.DuckDBPyConnection:
    """A new cursor of ``inst`` counted as a user (call with _LOCK held)."""
    cur = inst.con.cursor()
    inst.users += 1
    return cur


def _acquire(path: Path) -> tuple[Instance, duckdb.DuckDBPyConnection]:
    """The instance of the live version of ``path`` (opened if needed) and a cursor of it."""
    for _ in range(OPEN_TRIES):
        key = version(path)
        if key is None:
            break   # no such file: a one-off connection raises DuckDB's own error, as before
        with _LOCK:
            inst = _CACHE.get(key[0])
            if inst is not None and inst.key == key:
                _CACHE.move_to_end(key[0])
                return inst, _take(inst)
            if inst is not None:   # superseded (or changed in place): no new query on it, even if none opens
                _retire(_CACHE.pop(key[0]))
        fresh = _open(path, key)
        if version(path) != key:   # published while it opened: this instance may hold either version
            with _LOCK:
                _close(fresh)
            continue
        with _LOCK:
            inst = _CACHE.get(key[0])
            if inst is not None and inst.key == key:   # another thread opened it meanwhile: use that one
                _close(fresh)
                _CACHE.move_to_end(key[0])
                return inst, _take(inst)
            if inst is not None:   # another thread opened an older or newer one meanwhile
                _retire(_CACHE.pop(key[0]))
            _CACHE[key[0]] = fresh
            while len(_CACHE) > MAX_INSTANCES:
                _retire(_CACHE.popitem(last=False)[1])
            log.debug("opened the reader of %s", key)
            return fresh, _take(fresh)
    inst = _open(path, None)   # unstable (published over and over) or missing: this query only
    with _LOCK:
        return inst, _take(inst)


def _release(inst: Instance, cur: duckdb.DuckDBPyConnection) -> None:
    with _LOCK:
        cur.close()
        inst.users -= 1
        if inst.users == 0 and (inst.retired or inst.key is None):
            _close(inst)


@contextlib.contextmanager
def cursor(path: str | Path):
    """A read-only cursor on the live version of the database at ``path``, for one query or a page view's
    few queries (they see one snapshot).  Use it in one thread and do not keep it."""
    inst, cur = _acquire(Path(path))
    try:
        for sql in inst.setup:
            cur.execute(sql)
        yield cur
    finally:
        _release(inst, cur)


def clear() -> None:
    """Retire every cached instance (each closes once its running queries end)."""
    with _LOCK:
        while _CACHE:
            _retire(_CACHE.popitem()[1])


def cached() -> dict[str, tuple]:
    """Resolved path -> the version its cached instance holds (for tests and the benchmark)."""
    with _LOCK:
        return {p: inst.key for p, inst in _CACHE.items()}
