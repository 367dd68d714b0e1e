"""A run that ends with nothing scored is not a success: exit non-zero with the reason (the newest
failure, or why every score is undefined)."""
from __future__ import annotations

from pathlib import Path


def nothing_scored(db: Path, run_id: str | None) -> str | None:
    """Why the database holds no defined score after the run (None when it holds some)."""
    from ..dashboard import queries, queries_compare
    if not queries.database_exists(db):
        return "nothing was written to the database"
    summary = queries.method_summary(db)
    if len(summary) and int(summary["n"].fillna(0).sum()) > 0:
        return None
    fails = queries_compare.failures(db, run_id=run_id, limit=1)
    if len(fails):
        f = fails.iloc[0]
        return f"the newest failure: {f['stage']} {f['item']}: {' '.join(str(f['reason']).split())}"
    return ("every score is undefined: no scored image has a region the metrics can use (check regions, the "
            "masks and boxes, and score_split)")


def own_progress(db) -> dict | None:
    """This process's run in ``<db>.progress.json`` (its run id and counts), if it started one."""
    import os

    from ..store.progress import read_progress
    state = read_progress(db)
    return state if state and state.get("run_id") and state.get("pid") == os.getpid() else None
