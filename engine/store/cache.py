"""Streamlit caching of the read-only queries (the dashboard's data-access layer).

Each cached call is keyed by the database path *and its modification time*, so a database swapped
in by a finished batch is picked up on the next rerun, while a page never holds a connection open.
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from . import queries


def db_state() -> tuple[str, float | None]:
    """(path, mtime) of the configured database; mtime None when there is no usable database."""
    path = queries.db_path()
    if not queries.database_exists(path):
        return path, None
    return path, os.path.getmtime(path)


@st.cache_data(show_spinner=False, max_entries=256)
def call(name: str, path: str, mtime: float, *args, **kwargs):
    """Run ``queries.<name>(path, *args, **kwargs)`` once per (database version, arguments)."""
    fn = getattr(queries, name)
    return fn(Path(path), *args, **kwargs)
