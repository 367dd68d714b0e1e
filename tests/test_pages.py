"""AppTest for every page: real fixture database, filters, URL state, empty database."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import PROJECT_ROOT

PAGES = ["app.py", "pages/1_Leaderboard.py", "pages/2_Gallery.py"]


def run_page(page: str, db, monkeypatch, params: dict | None = None) -> AppTest:
    monkeypatch.setenv("XAI_DB", str(db))
    at = AppTest.from_file(str(PROJECT_ROOT / page), default_timeout=60)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.mark.parametrize("page", PAGES)
def test_empty_database_explains_how_to_create_one(page, tmp_path, monkeypatch):
    at = run_page(page, tmp_path / "none.duckdb", monkeypatch)
    assert any("engine demo" in i.value for i in at.info)


def test_overview(fixture_db, monkeypatch):
    at = run_page("app.py", fixture_db, monkeypatch)
    assert [m.value for m in at.metric][:2] == ["1", "2"]  # one dataset, two models
    assert len(at.dataframe) == 4


def test_leaderboard_filters_change_rows(fixture_db, monkeypatch):
    at = run_page("pages/1_Leaderboard.py", fixture_db, monkeypatch)
    metric = at.sidebar.selectbox(key="lb_metric")
    assert metric.value == "pointing_game"  # the default without URL parameters
    assert at.sidebar.selectbox(key="lb_region").value == "mask"
    detail = at.dataframe[1].value
    assert set(detail["method"]) == {"attention", "chefer_gae"} and len(detail) == 4
    first = detail["mean"].tolist()
    metric.set_value("iou_top5").run()
    assert not at.exception
    assert at.query_params["metric"] in (["iou_top5"], "iou_top5")
    assert at.dataframe[1].value["mean"].tolist() != first
    metric.set_value("deletion_auc").run()  # faithfulness: region 'none'
    assert not at.exception and at.sidebar.selectbox(key="lb_region").value == "none"
    assert len(at.get("plotly_chart")) == 1


def test_leaderboard_view_restored_from_url(fixture_db, monkeypatch):
    at = run_page("pages/1_Leaderboard.py", fixture_db, monkeypatch, {"metric": "iou_top5", "region": "box"})
    assert at.sidebar.selectbox(key="lb_metric").value == "iou_top5"
    assert at.sidebar.selectbox(key="lb_region").value == "box"


def test_gallery_shows_overlays_and_filters(fixture_db, monkeypatch):
    at = run_page("pages/2_Gallery.py", fixture_db, monkeypatch)
    images = at.get("image")
    assert len(images) == 12  # all test images of the fixture
    outcome = at.sidebar.selectbox(key="g_outcome")
    outcome.set_value("correct").run()
    assert not at.exception
    n_correct = len(at.get("image"))
    outcome.set_value("misclassified").run()
    n_wrong = len(at.get("image")) if at.get("image") else 0
    assert n_correct + n_wrong == 12


def test_gallery_method_from_url(fixture_db, monkeypatch):
    at = run_page("pages/2_Gallery.py", fixture_db, monkeypatch, {"method": "chefer_gae"})
    assert at.sidebar.selectbox(key="g_method").value == "chefer_gae"


@pytest.mark.parametrize("page", PAGES)
def test_older_schema_is_explained_not_crashed(page, tmp_path, monkeypatch):
    import duckdb
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
        con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        con.execute("CREATE TABLE scores (value DOUBLE)")
    at = run_page(page, db, monkeypatch)
    assert any("schema version 1" in w.value for w in at.warning)
