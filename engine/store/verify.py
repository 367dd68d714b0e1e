"""Checking every file of a results database against what was recorded when it was written, and the repair
of a damaged one (``python -m engine verify --db DB [--repair]``: engine/cli/verify.py).

Each shard file's size and SHA-256 are recorded in the manifest when it is written (engine/store/shards.py),
with the hashes of the jobs whose rows it holds (its *scopes*: the values of ``SCOPE`` of its rows).  A file
that is missing, of another size or of other bytes is *damaged*: its rows cannot be trusted.  The repair
leaves the damaged files out of a new catalog and deletes the ``jobs`` rows of the jobs that wrote rows into
them, so the next run of the experiment recomputes exactly those jobs (replacing their remaining rows in
the other files; a file of a table that names no job -- ``runs``, ``methods``, ``metrics`` -- is rewritten
by the next run's bookkeeping, or, for ``runs``, its history is lost).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .check import check_database
from .read import read_only
from .shards import Manifest, Shard, scan_sql, scope_columns, scope_hash_sql, shard_problem
from .writer import ResultWriter


@dataclass
class Damage:
    table: str
    file: Path
    why: str
    rows: int
    jobs: list[str] = field(default_factory=list)   # keys of the jobs that wrote rows into it


@dataclass
class Verdict:
    files: int                  # files listed by the catalog
    bytes: int
    unchecked: int              # listed without a checksum (an older writer; checked by size only)
    damaged: list[Damage]


def damaged_files(folder: Path, manifest: Manifest) -> list[tuple[str, Shard, str]]:
    """(table, shard, why) of every listed file that is missing, of another size or of other bytes."""
    return [(t, s, why) for t, ss in manifest.tables.items() for s in ss if (why := shard_problem(folder, s))]


def verify(db: str | Path) -> Verdict:
    """Check every file of ``db`` (raises DatabaseRefused when the catalog itself cannot be read)."""
    info = check_database(db, deep=False)
    if not info.sharded:
        return Verdict(0, 0, 0, [])
    shards = [s for ss in info.manifest.tables.values() for s in ss]
    bad = damaged_files(info.folder, info.manifest)
    return Verdict(files=len(shards), bytes=sum(s.bytes for s in shards),
                   unchecked=sum(not s.sha256 for s in shards),
                   damaged=_with_jobs(Path(db), info.folder, info.manifest, bad))


def _with_jobs(db: Path, folder: Path, manifest: Manifest, bad: list[tuple[str, Shard, str]]) -> list[Damage]:
    """Each damaged file with the keys of the jobs whose scope hash it lists (read from the undamaged
    ``jobs`` files: a job listed only in a damaged one is lost with it, and simply runs again)."""
    if not bad:
        return []
    broken = {s.file for _, s, _ in bad}
    jobs = scan_sql("jobs", folder, [s for s in manifest.tables.get("jobs", []) if s.file not in broken])
    out = []
    with read_only(db) as con:
        for table, s, why in bad:
            cols = scope_columns(table)
            keys = [] if not cols or not s.scopes else [r[0] for r in con.execute(
                f"SELECT job_key FROM ({jobs}) j WHERE list_contains(?, {scope_hash_sql(cols, 'j')}) ORDER BY job_key",
                [s.scopes]).fetchall()]
            out.append(Damage(table, folder / s.file, why, s.rows, keys))
    return out


def repair(db: str | Path, lock_timeout: float = 0.0) -> list[Damage]:
    """Drop the damaged files of ``db`` from its catalog and the jobs that wrote rows into them (the next run
    recomputes those jobs); what was dropped.  Takes the database's lock like a run."""
    damaged = verify(db).damaged
    if not damaged:
        return []
    with ResultWriter(db, lock_timeout=lock_timeout, drop_files=frozenset(d.file.name for d in damaged)) as w:
        for key in sorted({k for d in damaged for k in d.jobs}):
            w.delete("jobs", job_key=key)
        w.commit(now=True)
    return damaged
