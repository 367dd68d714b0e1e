"""Immutable Parquet shards of the large per-image tables, and the manifest that lists them.

The per-image tables (``SHARDED`` in schema.py: images, predictions, explanations, scores, curves,
sanity) are not stored inside the DuckDB file: each commit writes the rows it adds as one new Parquet
file per table in ``<db>.shards/``, and the DuckDB file (the *catalog*) holds a view per table over
its files.  The manifest (JSON in ``meta``, key ``shards``) records every live file with its row
count, size, compaction level, SHA-256 and the hashes of the *groups* it holds (a group = the table's replace
key without its last column, e.g. one (dataset, model, method, metric, region) for ``scores``), so a
re-written key only has to look into the few files that hold its group.  Merges are size-tiered and bounded
(:func:`plan_merge`: at most ``MERGE_BYTES`` per commit), so no commit does work proportional to the store.

A file is never modified: replacing rows rewrites the files that hold them into new files; merging
(compaction) writes one file from several.  Files a newer catalog no longer lists go to the manifest's
``garbage`` list and are deleted by a later writer after ``GRACE_S`` seconds, so a reader that opened
the older catalog a moment earlier still finds them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .db import sql_str
from .schema import PARQUET, REPLACE_KEYS, SHARDED, columns, row_key

log = logging.getLogger(__name__)

MANIFEST_KEY = "shards"
FOLDER_KEY = "shard_dir"   # meta: the absolute folder the views point into
FAN_IN = 16            # this many files of one size tier are merged into one file (of a tier FAN_IN times larger)
TIER_BASE = 64 << 10   # files under this many bytes are tier 0; tier n: under TIER_BASE * FAN_IN ** n bytes
# the most bytes (of input files) one commit merges, all tables together: a merge is bounded work, never the
# whole store (a file of more than half of it is never merged again; docs/benchmarks.md measures the cost)
MERGE_BYTES = 4 << 20
GRACE_S = 3600.0       # a superseded file is kept this long for readers of older catalogs
# rows per Parquet row group: a page reads only the groups of its (model, method); for the tables of maps and
# curves 8192 rows halved the gallery's read against DuckDB's default 122 880 (docs/benchmarks.md); scalar
# tables keep the default (a smaller group only makes the file footer every query parses bigger)
ROW_GROUP = {"explanations": 8192, "curves": 8192}
# the columns that say which job wrote a row (those of them a table has): a damaged file names the jobs to redo
SCOPE = ("dataset_id", "model_id", "method", "method_version", "method_params")


@dataclass
class Shard:
    file: str                      # name inside the shard folder
    rows: int
    bytes: int
    level: int = 0                 # 0: written by a commit; n: merged from files of level < n (the deepest + 1)
    columns: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    sha256: str = ""               # of the file's bytes, recorded when written ("": a file of an older writer)
    scopes: list[str] = field(default_factory=list)   # hashes of the SCOPE values of its rows (scope_hash_sql)


@dataclass
class Manifest:
    tables: dict[str, list[Shard]] = field(default_factory=lambda: {t: [] for t in PARQUET})
    garbage: list[tuple[str, float]] = field(default_factory=list)   # (file, superseded at, unix time)

    def to_json(self) -> str:
        """The manifest as compact JSON: a file's columns are written only where they differ from its table's
        declared columns (listed once per table), and group hashes only for the per-image tables."""
        declared = {t: [c for c, _ in columns(t)] if t in PARQUET else [] for t in self.tables}

        def row(s: Shard, cols: list[str]) -> dict:   # by hand: dataclasses.asdict deep-copies every hash (slow)
            out = {"file": s.file, "rows": s.rows, "bytes": s.bytes, "level": s.level}
            if s.columns != cols:
                out["columns"] = s.columns
            if s.groups:
                out["groups"] = s.groups
            if s.sha256:
                out["sha256"] = s.sha256
            if s.scopes:
                out["scopes"] = s.scopes
            return out
        tables = {t: [row(s, declared[t]) for s in ss] for t, ss in self.tables.items()}
        return json.dumps({"tables": tables, "columns": declared, "garbage": self.garbage}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> "Manifest":
        m = cls()
        if text:
            raw = json.loads(text)
            declared = raw.get("columns", {})   # a file listed without columns has its table's (since version 7)
            for t, ss in raw.get("tables", {}).items():
                m.tables[t] = [Shard(**{"columns": declared.get(t, []), **s}) for s in ss]
            m.garbage = [tuple(g) for g in raw.get("garbage", [])]
        return m

    def files(self) -> set[str]:
        return {s.file for ss in self.tables.values() for s in ss}


def shard_dir(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".shards")


def locate(db_path: Path, manifest: Manifest, recorded: str | None) -> Path:
    """Where the files of ``manifest`` are: beside the database, or (a catalog copied without its folder)
    in the folder recorded when it was published."""
    local = shard_dir(db_path)
    if recorded and Path(recorded) != local:
        names = manifest.files()
        if not all((local / n).is_file() for n in names) and all((Path(recorded) / n).is_file() for n in names):
            return Path(recorded)
    return local


def group_columns(table: str) -> tuple[str, ...]:
    return REPLACE_KEYS[table][:-1]


def group_hash_sql(table: str, alias: str = "") -> str:
    """A stable hash (md5, not DuckDB's version-dependent ``hash``) of a row's group columns."""
    a = f"{alias}." if alias else ""
    parts = ", ".join(f"coalesce(CAST({a}{c} AS VARCHAR), chr(0))" for c in group_columns(table))
    return f"left(md5(concat_ws(chr(31), {parts})), 16)"


def scope_columns(table: str) -> tuple[str, ...]:
    """The SCOPE columns ``table`` has (none: its rows name no job, e.g. ``runs``, ``methods``)."""
    have = {c for c, _ in columns(table)}
    return tuple(c for c in SCOPE if c in have)


def scope_hash_sql(cols: tuple[str, ...], alias: str = "") -> str:
    """A stable hash of a row's values of ``cols`` (a table's :func:`scope_columns`); the same expression over
    a ``jobs`` row gives the hash of the rows that job wrote."""
    a = f"{alias}." if alias else ""
    parts = ", ".join(f"coalesce(CAST({a}{c} AS VARCHAR), chr(0))" for c in cols)
    return f"left(md5(concat_ws(chr(31), {parts})), 12)"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (about 1.9 GB/s of CPU here with the CPU's SHA instructions: docs/benchmarks.md)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def shard_problem(folder: Path, shard: Shard) -> str | None:
    """Why the file of ``shard`` cannot be used (missing, not a regular file, of another size, other bytes than
    written), or None.  A file listed without a checksum (written before they were recorded) is checked by
    size only."""
    f = folder / shard.file
    try:
        st = f.lstat()
    except FileNotFoundError:
        return "is missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not f.is_file() or f.is_symlink():
        return "is not a regular file"
    if st.st_size != shard.bytes:
        return f"has {st.st_size} bytes, expected {shard.bytes}"
    if shard.sha256:
        try:
            if file_sha256(f) != shard.sha256:
                return "has other bytes than were written (checksum mismatch)"
        except OSError as exc:
            return f"cannot be read ({exc.strerror})"
    return None


def key_condition(table: str, left: str, right: str) -> str:
    """SQL: rows ``left`` and ``right`` of ``table`` have the same key (its replace key, else its primary key)."""
    return " AND ".join(f"{left}.{k} IS NOT DISTINCT FROM {right}.{k}" for k in row_key(table))


def scan_sql(table: str, folder: Path, shards: list[Shard]) -> str:
    """SELECT of every declared column of ``table`` over ``shards`` (NULL for a column a file lacks:
    the additive migration of a sharded table); an empty SELECT with the right types when none."""
    cols = columns(table)
    if not shards:
        return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in cols) + " WHERE false"
    have = set.intersection(*(set(s.columns) for s in shards))
    every = set.union(*(set(s.columns) for s in shards))
    files = ", ".join(sql_str(folder / s.file) for s in shards)
    union = ", union_by_name = true" if have != every else ""
    sel = ", ".join(c if c in every else f"CAST(NULL AS {t}) AS {c}" for c, t in cols)
    return f"SELECT {sel} FROM read_parquet([{files}]{union})"


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_name(table: str) -> str:
    return f"{table}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:10]}.parquet"


# the names new_name gives (and nothing else): only files of this shape are ever deleted from the folder
OWN_NAME = re.compile(r"(?:" + "|".join(sorted(PARQUET)) + r")-\d{8}T\d{6}-[0-9a-f]{10}\.parquet")


def own_file(name: str) -> bool:
    """Whether ``name`` is a name the store gives its shard files (a user's file in the folder is not)."""
    return OWN_NAME.fullmatch(name) is not None


def write_shard(con, table: str, folder: Path, select_sql: str, level: int = 0,
                merged: list[Shard] | None = None) -> Shard | None:
    """Write the rows of ``select_sql`` (declared columns of ``table``) as a new file; None when empty.
    The group hashes are recorded for the per-image tables (``SHARDED``) only: the writer holds the
    other tables in memory and finds the files of a changed row by scanning that table's few files.
    ``merged``: the files whose every row ``select_sql`` reads (a merge): their hashes are the new file's."""
    name = new_name(table)
    path = folder / name
    n = con.execute(f"COPY ({select_sql}) TO {sql_str(path)} "
                    f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP.get(table, 122880)})").fetchone()[0]
    if n == 0:
        path.unlink(missing_ok=True)
        return None
    fsync(path)
    if merged is not None:
        groups = sorted({g for s in merged for g in s.groups})
        scopes = sorted({g for s in merged for g in s.scopes})
    else:
        scope = scope_columns(table)
        hashes = [group_hash_sql(table) if table in SHARDED else "NULL", scope_hash_sql(scope) if scope else "NULL"]
        found = con.execute(f"SELECT DISTINCT {', '.join(hashes)} FROM read_parquet({sql_str(path)})").fetchall()
        groups = sorted({r[0] for r in found if r[0] is not None})
        scopes = sorted({r[1] for r in found if r[1] is not None})
    return Shard(file=name, rows=int(n), bytes=path.stat().st_size, level=level,
                 columns=[c for c, _ in columns(table)], groups=groups, sha256=file_sha256(path), scopes=scopes)


def tier(shard: Shard) -> int:
    """Size tier of a file: 0 under TIER_BASE bytes, then one tier per FAN_IN-fold."""
    n, limit = 0, TIER_BASE
    while shard.bytes >= limit:
        n, limit = n + 1, limit * FAN_IN
    return n


def plan_merge(shards: list[Shard], budget: int) -> list[Shard] | None:
    """The files to merge into one at this commit, at most ``budget`` bytes of them, or None.

    Size-tiered: the lowest tier holding FAN_IN files gives its smallest ones, as many as fit the budget
    (at least 2).  So each commit merges at most ``budget`` bytes, a byte is rewritten about once per tier
    (log_FAN_IN of MERGE_BYTES over the commit size), and files that grew past half the budget are not
    merged again: a table keeps about FAN_IN files per tier plus ``2 * size / MERGE_BYTES`` large ones."""
    tiers: dict[int, list[Shard]] = {}
    for s in shards:
        tiers.setdefault(tier(s), []).append(s)
    for t in sorted(tiers):
        same = sorted(tiers[t], key=lambda s: s.bytes)
        if len(same) < FAN_IN:
            continue
        group, total = [], 0
        for s in same[:FAN_IN]:
            if total + s.bytes > budget:
                break
            group.append(s)
            total += s.bytes
        if len(group) >= 2:
            return group
    return None


def collect_garbage(folder: Path, manifest: Manifest, now: float | None = None) -> int:
    """Delete the store's own files that are superseded (listed in the manifest's ``garbage``) for GRACE_S
    seconds, and the store's own files that no catalog lists (a writer killed before it published them);
    returns how many were deleted.  Only names of the store's own shape (:func:`own_file`) are ever deleted:
    anything else in the folder (a user's notes, an analysis saved there) is left alone and mentioned once
    in the log.  Call only while holding the lock."""
    now = time.time() if now is None else now
    live = manifest.files()
    keep, deleted = [], 0
    for name, since in manifest.garbage:
        if now - since < GRACE_S:
            keep.append((name, since))
        elif own_file(name):
            (folder / name).unlink(missing_ok=True)
            deleted += 1
    manifest.garbage = keep
    pending = {g[0] for g in keep}
    foreign = []
    if folder.is_dir():
        for f in folder.iterdir():
            if f.name in live or f.name in pending:
                continue
            if own_file(f.name) and f.is_file() and not f.is_symlink():
                f.unlink(missing_ok=True)
                deleted += 1
            else:
                foreign.append(f.name)
    if foreign:
        log.info("%s: left alone %d file(s) that are not the store's own: %s", folder, len(foreign),
                 ", ".join(sorted(foreign)[:5]) + (", ..." if len(foreign) > 5 else ""))
    return deleted
