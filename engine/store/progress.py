"""The progress file of a run, ``<db>.progress.json``: where it lives and how readers read it.

The runner (:mod:`engine.runner.progress`) replaces it whole (temporary file + rename) as the run goes
on; a reader takes no lock and never blocks the writer.  See docs/schema.md.
"""
from __future__ import annotations

import json
import os
import platform
import socket
from pathlib import Path


def progress_path(db: str | Path) -> Path:
    """Where a run writing ``db`` records its progress (beside the database)."""
    db = Path(db)
    return db.with_name(f"{db.name}.progress.json")


def read_progress(db: str | Path) -> dict | None:
    """The progress file of ``db`` (None when there is none or it cannot be read), with ``alive``:
    whether the process that wrote it still runs (on this host; another host's run counts as alive
    while it says ``running``)."""
    try:
        state = json.loads(progress_path(db).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    alive = state.get("status") == "running"
    if alive and state.get("host") in (platform.node(), socket.gethostname()):
        alive = _pid_alive(state.get("pid"))
    state["alive"] = alive
    return state


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def training_text(t: dict) -> str:
    """``vit_demo epoch 3 of 10, loss 0.412`` (a ``training`` entry of the progress state)."""
    loss = t.get("loss")
    return f"{t['model']} {t['unit']} {t['k']} of {t['n']}" + ("" if loss is None else f", loss {loss:.3f}")
