"""The typed query facade (engine.dashboard.Db): a query runs once per (database version, arguments)
and again when the file changes (a new mtime) or another database is asked."""
from __future__ import annotations

import pandas as pd
import pytest
import streamlit as st

from engine.dashboard import Db, queries


@pytest.fixture
def counted(monkeypatch):
    calls = []

    def table_counts(path):
        calls.append(str(path))
        return pd.DataFrame({"table_name": ["scores"], "rows": [len(calls)]})

    def leaderboard_view(path, dataset_id, metric, region):
        calls.append((str(path), dataset_id, metric, region))
        return pd.DataFrame({"n": [len(calls)]}), pd.DataFrame()

    monkeypatch.setattr(queries, "table_counts", table_counts)
    monkeypatch.setattr(queries, "leaderboard_view", leaderboard_view)
    st.cache_data.clear()
    yield calls
    st.cache_data.clear()


def test_cached_per_database_version(counted):
    a = Db("a.duckdb", 1.0)
    assert a.table_counts()["rows"].iloc[0] == 1
    assert Db("a.duckdb", 1.0).table_counts()["rows"].iloc[0] == 1  # same version: from the cache
    assert counted == ["a.duckdb"]
    assert Db("a.duckdb", 2.0).table_counts()["rows"].iloc[0] == 2  # the file changed
    assert Db("b.duckdb", 1.0).table_counts()["rows"].iloc[0] == 3  # another database
    assert counted == ["a.duckdb", "a.duckdb", "b.duckdb"]


def test_arguments_and_queries_are_part_of_the_key(counted):
    db = Db("a.duckdb", 1.0)
    db.leaderboard_view("ds", "pointing_game", "mask")
    db.leaderboard_view("ds", "pointing_game", "mask")
    db.leaderboard_view("ds", "iou_top5", "mask")
    db.table_counts()
    assert counted == [("a.duckdb", "ds", "pointing_game", "mask"), ("a.duckdb", "ds", "iou_top5", "mask"),
                       "a.duckdb"]


def test_db_state_without_a_database(tmp_path, monkeypatch):
    from engine.dashboard import db_state
    monkeypatch.setenv("XAI_DB", str(tmp_path / "none.duckdb"))
    db = db_state()
    assert not db.ready and db.path.endswith("none.duckdb")


def test_db_state_of_a_database(dashboard_db, monkeypatch):
    from engine.dashboard import db_state
    monkeypatch.setenv("XAI_DB", str(dashboard_db))
    db = db_state()
    assert db.ready and db.mtime == dashboard_db.stat().st_mtime
    assert set(db.score_options().columns) >= {"dataset_id", "metric", "region", "method", "model_id"}
