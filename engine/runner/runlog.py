"""A log file per run, next to the database: ``<db folder>/logs/<experiment>-<UTC time>.log``."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from ..store import utc_now


@contextlib.contextmanager
def run_log(db: Path, experiment: str):
    """Copy the engine's log records (INFO and up) into a per-run file while the block runs."""
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    path = db.resolve().parent / "logs" / f"{experiment}-{stamp}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("engine")
    logger.addHandler(handler)
    logger.info("logging this run to %s", path)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
