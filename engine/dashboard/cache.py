"""Streamlit caching of the read-only queries (the dashboard's data-access layer).

Each cached call is keyed by the database path *and its modification time*, so a database swapped
in by a finished batch is picked up on the next rerun, while a page never holds a connection open.
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from . import queries, queries_compare
from .safe import md
from ..store.schema import SCHEMA_VERSION


def db_state() -> tuple[str, float | None]:
    """(path, mtime) of the configured database; mtime None when there is no usable database.

    A database written by an older schema version is reported on the page (with how to rebuild it)
    and treated as unusable, instead of failing in a query.
    """
    path = queries.db_path()
    if not queries.database_exists(path):
        return path, None
    found = queries.schema_version(path)
    if found < SCHEMA_VERSION:
        st.warning(f"{md(path)} was written with results schema version {found}; this dashboard reads version "
                   f"{SCHEMA_VERSION}. Re-run `python -m engine demo --db PATH` (or your experiment) to rebuild it.")
        return path, None
    return path, os.path.getmtime(path)


@st.cache_data(show_spinner=False, max_entries=256)
def call(name: str, path: str, mtime: float, *args, **kwargs):
    """Run ``queries.<name>`` (or ``queries_compare.<name>``) ``(path, *args, **kwargs)`` once per
    (database version, arguments)."""
    fn = getattr(queries, name, None) or getattr(queries_compare, name)
    return fn(Path(path), *args, **kwargs)
