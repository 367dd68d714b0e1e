"""The commands a hint names, in one place: every hint names the database being shown, and a hint to
*look* at a database never starts work (``serve`` only serves; ``demo --serve`` would add the demo to it)."""
from __future__ import annotations

import shlex
from pathlib import Path


def _q(db: str | Path) -> str:
    return shlex.quote(str(db))


def serve_command(db: str | Path) -> str:
    """The command that shows ``db`` in the dashboard and does nothing else."""
    return f"python -m engine serve --db {_q(db)}"


def status_command(db: str | Path, full: bool = False) -> str:
    return f"python -m engine status {'--all ' if full else ''}--db {_q(db)}"


def fill_commands(db: str | Path) -> str:
    """How to put results into ``db`` (named, so the work never lands in another database)."""
    return (f"`python -m engine run EXPERIMENT.toml --db {_q(db)}` (your study) or "
            f"`python -m engine demo --db {_q(db)}` (the embedded demo)")


def start_help(db: str | Path) -> str:
    """The Overview's *Start a run* text: every command names the database shown."""
    return (f"- Your own study: `python -m engine run EXPERIMENT.toml --db {_q(db)}`.\n"
            f"- Embedded demo (synthetic blood smears, fine-tuned and random ViT, every method and metric): "
            f"`python -m engine demo --db {_q(db)}` (add `--quick` for a small one).\n"
            f"- Look at another database (starts no work): `python -m engine serve --db PATH` "
            f"(or `XAI_DB=PATH streamlit run app.py`).\n")
