"""Immutable Parquet shards of the large per-image tables, and the manifest that lists them.

The per-image tables (``SHARDED`` in schema.py: images, predictions, explanations, scores, curves,
sanity) are not stored inside the DuckDB file: each commit writes the rows it adds as one new Parquet
file per table in ``<db>.shards/``, and the DuckDB file (the *catalog*) holds a view per table over
its files.  The manifest (JSON in ``meta``, key ``shards``) records every live file with its row
count, size, compaction level and the hashes of the *groups* it holds (a group = the table's replace
key without its last column, e.g. one (dataset, model, method, metric, region) for ``scores``), so a
re-written key only has to look into the few files that hold its group.

A file is never modified: replacing rows rewrites the files that hold them into new files; merging
(compaction) writes one file from several.  Files a newer catalog no longer lists go to the manifest's
``garbage`` list and are deleted by a later writer after ``GRACE_S`` seconds, so a reader that opened
the older catalog a moment earlier still finds them.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .db import sql_str
from .schema import PARQUET, REPLACE_KEYS, SHARDED, columns, row_key

MANIFEST_KEY = "shards"
FOLDER_KEY = "shard_dir"   # meta: the absolute folder the views point into
FAN_IN = 16            # this many files of one level are merged into one file of the next level
GRACE_S = 3600.0       # a superseded file is kept this long for readers of older catalogs
# rows per Parquet row group: a page reads only the groups of its (model, method); for the tables of maps and
# curves 8192 rows halved the gallery's read against DuckDB's default 122 880 (docs/benchmarks.md); scalar
# tables keep the default (a smaller group only makes the file footer every query parses bigger)
ROW_GROUP = {"explanations": 8192, "curves": 8192}


@dataclass
class Shard:
    file: str                      # name inside the shard folder
    rows: int
    bytes: int
    level: int = 0                 # 0: written by a commit; n: merged from FAN_IN files of level n - 1
    columns: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


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


def write_shard(con, table: str, folder: Path, select_sql: str, level: int = 0) -> Shard | None:
    """Write the rows of ``select_sql`` (declared columns of ``table``) as a new file; None when empty.
    The group hashes are recorded for the per-image tables (``SHARDED``) only: the writer holds the
    other tables in memory and finds the files of a changed row by scanning that table's few files."""
    n = con.execute(f"SELECT count(*) FROM ({select_sql})").fetchone()[0]
    if n == 0:
        return None
    name = new_name(table)
    path = folder / name
    con.execute(f"COPY ({select_sql}) TO {sql_str(path)} "
                f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP.get(table, 122880)})")
    fsync(path)
    groups = sorted(r[0] for r in con.execute(
        f"SELECT DISTINCT {group_hash_sql(table)} FROM read_parquet({sql_str(path)})").fetchall()) \
        if table in SHARDED else []
    return Shard(file=name, rows=int(n), bytes=path.stat().st_size, level=level,
                 columns=[c for c, _ in columns(table)], groups=groups)


def plan_merges(shards: list[Shard]) -> list[list[Shard]]:
    """Groups of FAN_IN files of one level to merge (tiered compaction: each row is rewritten once per
    level, and a table keeps at most about FAN_IN files per level)."""
    out = []
    level = 0
    while True:
        same = [s for s in shards if s.level == level]
        if not same and all(s.level < level for s in shards):
            return out
        if len(same) >= FAN_IN:
            out.append(same[:FAN_IN])
        level += 1


def collect_garbage(folder: Path, manifest: Manifest, now: float | None = None) -> int:
    """Delete superseded files older than GRACE_S and files no catalog ever listed (a writer killed
    before it published them); returns how many were deleted.  Call only while holding the lock."""
    now = time.time() if now is None else now
    live = manifest.files()
    keep, deleted = [], 0
    for name, since in manifest.garbage:
        if now - since >= GRACE_S:
            (folder / name).unlink(missing_ok=True)
            deleted += 1
        else:
            keep.append((name, since))
    manifest.garbage = keep
    pending = {g[0] for g in keep}
    if folder.is_dir():
        for f in folder.iterdir():
            if f.name not in live and f.name not in pending:
                f.unlink(missing_ok=True)
                deleted += 1
    return deleted
