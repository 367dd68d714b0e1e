"""The only code that writes the results database.

DuckDB allows one writer *or* readers on a file, across processes.  To keep the dashboard and a
batch run out of each other's way the writer never opens the live file for writing:

1. it takes an exclusive lock on ``<db>.lock`` (a second writer waits up to ``lock_timeout`` s,
   then refuses with a clear message);
2. it copies the live file (if any) to ``<db>.staging-<pid>`` and writes there;
3. :meth:`ResultWriter.commit` checkpoints, closes, fsyncs and atomically renames the staging
   file over the live one.  Readers that hold the old file keep reading it; new connections see
   the new one.  A crash before the rename leaves the live file untouched.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from pathlib import Path

import duckdb
import pandas as pd

from .identity import utc_now
from .schema import REPLACE_KEYS, columns, create_schema

log = logging.getLogger(__name__)


class WriterBusy(RuntimeError):
    pass


def canonical_json(obj) -> str:
    return json.dumps(obj or {}, sort_keys=True, separators=(",", ":"), default=str)


class ResultWriter:
    def __init__(self, db_path: str | Path, lock_timeout: float = 0.0):
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_timeout = lock_timeout
        self._lock_fh = None
        self.staging = self.db_path.with_name(f"{self.db_path.name}.staging-{os.getpid()}")
        self.con: duckdb.DuckDBPyConnection | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> "ResultWriter":
        self._lock_fh = open(str(self.db_path) + ".lock", "a+")
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._lock_fh.close()
                    raise WriterBusy(f"{self.db_path}: another run is writing to this database; "
                                     f"wait for it to finish or use another --db") from None
                time.sleep(0.5)
        # we hold the lock, so staging files here belong to runs that died (kill -9, power loss)
        for stale in self.db_path.parent.glob(f"{self.db_path.name}.staging-*"):
            log.info("removing %s left by an interrupted run", stale)
            stale.unlink(missing_ok=True)
        if self.db_path.exists():
            shutil.copyfile(self.db_path, self.staging)
        self.con = duckdb.connect(str(self.staging))
        create_schema(self.con)
        return self

    def _publish(self, keep_open: bool) -> None:
        """Checkpoint, close and fsync the staging file, then rename it over the live database."""
        self.con.execute("CHECKPOINT")
        self.con.close()
        self.con = None
        with open(self.staging, "rb+") as fh:
            os.fsync(fh.fileno())
        if keep_open:  # the published file is renamed away, so writing goes on in a copy of it
            shutil.copyfile(self.staging, str(self.staging) + ".next")
        os.replace(self.staging, self.db_path)
        if keep_open:
            os.replace(str(self.staging) + ".next", self.staging)
            self.con = duckdb.connect(str(self.staging))

    def commit(self) -> None:
        """Publish everything written so far atomically; the writer stays open for more."""
        self._publish(keep_open=True)

    def close(self, commit: bool = True) -> None:
        if self.con is not None:
            if commit:
                self._publish(keep_open=False)
            else:
                self.con.close()
                self.staging.unlink(missing_ok=True)
            self.con = None
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self) -> "ResultWriter":
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(commit=exc_type is None)

    # -- writes ------------------------------------------------------------------------------
    def upsert(self, table: str, row: dict) -> None:
        """Insert or replace one row of a table with a primary key (runs, datasets, models, ...)."""
        cols = [c for c in row]
        vals = [canonical_json(v) if isinstance(v, dict) else v for v in row.values()]
        self.con.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) "
                         f"VALUES ({', '.join('?' for _ in cols)})", vals)

    def finish_run(self, run_id: str, status: str, counts: dict | None = None) -> None:
        """Close a ``runs`` row: its final status, finish time (now) and job / item counts."""
        self.con.execute("UPDATE runs SET status = ?, finished_at = ?, counts = ? WHERE run_id = ?",
                         [status, utc_now(), json.dumps(counts or {}, sort_keys=True, separators=(", ", ": ")),
                          run_id])

    def clear_failures(self, job_key: str) -> None:
        """Forget the failures recorded for a job (a rerun of it replaces its old reasons)."""
        self.con.execute("DELETE FROM failures WHERE job_key = ?", [job_key])

    # -- reads of the staged file --------------------------------------------------------------
    def done_job_keys(self) -> set[str]:
        """Keys of the jobs recorded as done in the staged database."""
        return {r[0] for r in self.con.execute("SELECT job_key FROM jobs WHERE status = 'done'").fetchall()}

    def has_pairwise(self, dataset_id: str, model_id: str, metrics: list[str]) -> bool:
        """Whether the staged ``pairwise`` table holds any paired test of one (dataset, model) for ``metrics``."""
        return bool(self.con.execute(
            "SELECT count(*) FROM pairwise WHERE dataset_id = ? AND model_id = ? AND list_contains(?, metric)",
            [dataset_id, model_id, list(metrics)]).fetchone()[0])

    def scores_of(self, dataset_id: str, model_id: str, wanted: list[str]) -> pd.DataFrame:
        """The staged ``scores`` rows of one (dataset, model), for the summaries the runner recomputes."""
        known = {name for name, _ in columns("scores")}
        cols = ", ".join(c for c in wanted if c in known)
        return self.con.execute(f"SELECT {cols} FROM scores WHERE dataset_id = ? AND model_id = ?",
                                [dataset_id, model_id]).df()

    def replace_rows(self, table: str, df: pd.DataFrame) -> int:
        """Insert ``df``; rows with the same result key (REPLACE_KEYS) are replaced, never duplicated."""
        if table not in REPLACE_KEYS:
            raise ValueError(f"{table} has no replace key")
        if df.empty:
            return 0
        keys = REPLACE_KEYS[table]
        cols = [c for c, _ in columns(table)]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{table}: missing columns {missing}")
        self.con.register("_incoming", df[cols])
        try:
            self.con.execute("BEGIN")
            cond = " AND ".join(f"t.{k} IS NOT DISTINCT FROM i.{k}" for k in keys)
            self.con.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM _incoming i WHERE {cond})")
            names = ", ".join(cols)  # by name: a migrated table has its new columns at the end
            self.con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _incoming")
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.unregister("_incoming")
        return len(df)

