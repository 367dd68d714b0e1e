"""What the runner reads back from the writer's session (published rows and rows written since): the
finished jobs, a run's counts, the scores and summaries a model's summaries are recomputed from."""
from __future__ import annotations

import pandas as pd

from .group_commit import serialised
from .schema import columns


class WriterReads:
    """Reads on :class:`~engine.store.writer.ResultWriter`'s connection (under its mutex)."""

    @serialised
    def done_job_keys(self) -> set[str]:
        """Keys of the jobs recorded as done (published, or written in this session)."""
        return {r[0] for r in self.con.execute("SELECT job_key FROM jobs WHERE status = 'done'").fetchall()}

    @serialised
    def run_counts(self, run_id: str) -> dict[str, int]:
        """Jobs done and failed, and failed items, recorded for one run (published, or written in this session)."""
        done, failed = self.con.execute("SELECT count(*) FILTER (status = 'done'), count(*) FILTER (status <> 'done') "
                                        "FROM jobs WHERE run_id = ?", [run_id]).fetchone()
        items = self.con.execute("SELECT count(*) FROM failures WHERE run_id = ? AND item <> '*'",
                                 [run_id]).fetchone()[0]
        return {"done": done, "failed_jobs": failed, "failed_items": items}

    @serialised
    def has_pairwise(self, dataset_id: str, model_id: str, metrics: list[str]) -> bool:
        """Whether the staged ``pairwise`` table holds any paired test of one (dataset, model) for ``metrics``."""
        return bool(self.con.execute(
            "SELECT count(*) FROM pairwise WHERE dataset_id = ? AND model_id = ? AND list_contains(?, metric)",
            [dataset_id, model_id, list(metrics)]).fetchall()[0][0])  # fetchall: leaves no open result

    @serialised
    def scores_of(self, dataset_id: str, model_id: str, wanted: list[str]) -> pd.DataFrame:
        """The ``scores`` rows of one (dataset, model) written so far, for the summaries the runner recomputes."""
        return self.rows_of("scores", dataset_id, wanted, model_id)

    @serialised
    def rows_of(self, table: str, dataset_id: str, wanted: list[str], model_id: str | None = None) -> pd.DataFrame:
        """The rows of ``table`` (a schema table) of one dataset (and model) written so far, columns ``wanted``."""
        known = {name for name, _ in columns(table)}  # KeyError for a table not in the schema
        cols = ", ".join(c for c in wanted if c in known)
        where = "dataset_id = ?" + (" AND model_id = ?" if model_id is not None else "")
        return self.con.execute(f"SELECT {cols} FROM {table} WHERE {where}",
                                [dataset_id] + ([model_id] if model_id is not None else [])).df()
