"""AppTest for every page: real fixture database, filters change what is shown, the URL restores a
view, an empty or outdated database is explained instead of failing."""
from __future__ import annotations

import pandas as pd
import pytest
from conftest import PROJECT_ROOT
from streamlit.testing.v1 import AppTest

PAGES = ["app.py", "pages/1_Leaderboard.py", "pages/2_Gallery.py", "pages/3_Image.py", "pages/4_Compare.py",
         "pages/5_Runs.py"]


def run_page(page: str, db, monkeypatch, params: dict | None = None) -> AppTest:
    monkeypatch.setenv("XAI_DB", str(db))
    at = AppTest.from_file(str(PROJECT_ROOT / page), default_timeout=90)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def qp(at: AppTest, key: str):
    v = at.query_params[key]
    return v[0] if isinstance(v, list) else v


def texts(at: AppTest) -> str:
    return "\n".join([c.value for c in at.caption] + [m.value for m in at.markdown] + [i.value for i in at.info])


@pytest.mark.parametrize("page", PAGES)
def test_empty_database_explains_how_to_create_one(page, tmp_path, monkeypatch):
    at = run_page(page, tmp_path / "none.duckdb", monkeypatch)
    assert any("engine demo" in i.value for i in at.info)


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


def test_overview(dashboard_db, monkeypatch):
    at = run_page("app.py", dashboard_db, monkeypatch)
    assert [m.value for m in at.metric][:2] == ["1", "2"]  # one dataset, two models
    assert [m.value for m in at.metric][4] == "2"  # failures
    models = at.dataframe[1].value
    assert {"strategy", "arch", "test_balanced_accuracy", "test_macro_f1", "test_auroc"} <= set(models.columns)
    assert set(models.strategy) == {"supervised", "dino"}
    assert set(models.pretraining) == {"supervised", "dino"} and set(models.fine_tuning) == {"trained", "untrained"}
    assert len(at.dataframe[3].value) == 2  # runs, the failed one included
    assert any("failed items" in w.value for w in at.warning)
    assert "python -m engine run EXPERIMENT.toml" in texts(at)


def test_leaderboard_filters_change_rows(dashboard_db, monkeypatch):
    at = run_page("pages/1_Leaderboard.py", dashboard_db, monkeypatch)
    metric = at.sidebar.selectbox(key="lb_metric")
    assert metric.value == "pointing_game" and at.sidebar.selectbox(key="lb_region").value == "mask"
    detail = at.dataframe[1].value
    assert len(detail) == 6  # 2 models x (attention, chefer_gae) + the depth ablation's 2 on one model
    assert set(detail["rank"].dropna()) <= {1, 2, 3, 4}
    first = detail["mean"].tolist()
    metric.set_value("iou_top5")  # element objects go stale after a run: look them up again
    rerun(at)
    assert qp(at, "metric") == "iou_top5"
    assert at.dataframe[1].value["mean"].tolist() != first
    at.sidebar.selectbox(key="lb_metric").set_value("deletion_auc")
    rerun(at)
    assert at.sidebar.selectbox(key="lb_region").value == "none"
    assert len(at.get("plotly_chart")) == 1
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download this table (CSV)", "Download this table (Parquet)", "Paper table (CSV)",
                      "Paper table (LaTeX)"]


def test_leaderboard_grouped_by_strategy(dashboard_db, monkeypatch):
    at = run_page("pages/1_Leaderboard.py", dashboard_db, monkeypatch, {"group": "strategy"})
    assert at.sidebar.selectbox(key="lb_group").value == "strategy"
    pivot = at.dataframe[0].value  # pretraining and fine-tuning state together: never averaged across states
    assert set(pivot.columns) == {"supervised · untrained", "dino · trained"}
    detail = at.dataframe[1].value
    assert "models" in detail.columns and (detail["models"] == 1).all()


def test_leaderboard_view_restored_from_url(dashboard_db, monkeypatch):
    at = run_page("pages/1_Leaderboard.py", dashboard_db, monkeypatch, {"metric": "iou_top5", "region": "box"})
    assert at.sidebar.selectbox(key="lb_metric").value == "iou_top5"
    assert at.sidebar.selectbox(key="lb_region").value == "box"


def test_gallery_shows_overlays_and_filters(dashboard_db, monkeypatch):
    at = run_page("pages/2_Gallery.py", dashboard_db, monkeypatch)
    assert at.sidebar.selectbox(key="g_method").value == "attention"  # default parameters preferred
    assert len(at.get("image")) == 12  # all test images of the fixture
    assert sum("](Image?" in m.value for m in at.markdown) == 12  # a details link per image
    at.sidebar.selectbox(key="g_outcome").set_value("correct")
    n_correct = len(rerun(at).get("image"))
    at.sidebar.selectbox(key="g_outcome").set_value("misclassified")
    n_wrong = len(rerun(at).get("image"))
    assert n_correct + n_wrong == 12
    at.sidebar.selectbox(key="g_outcome").set_value("all")
    cls = at.sidebar.selectbox(key="g_cls")
    cls.set_value(cls.options[1])
    n_cls = len(rerun(at).get("image"))
    assert 0 < n_cls < 12 or "No images match" in texts(at)


def test_gallery_pointing_game_misses_and_confidence_from_url(dashboard_db, monkeypatch):
    base = {"method": "chefer_gae"}
    at = run_page("pages/2_Gallery.py", dashboard_db, monkeypatch, base)
    assert at.sidebar.selectbox(key="g_method").value == "chefer_gae"
    at.sidebar.button[0].click()  # "Show the pointing-game misses"
    rerun(at)
    assert qp(at, "fmetric") == "pointing_game · mask" and qp(at, "frange") == "0~0"
    misses = len(at.get("image"))
    hits = run_page("pages/2_Gallery.py", dashboard_db, monkeypatch,
                    {**base, "fmetric": "pointing_game · mask", "frange": "1~1"})
    assert misses + len(hits.get("image")) == 12
    assert hits.sidebar.slider(key="g_frange").value == (1.0, 1.0)
    none = run_page("pages/2_Gallery.py", dashboard_db, monkeypatch, {**base, "conf": "0.99~1"})
    assert none.sidebar.slider(key="g_conf").value == (0.99, 1.0)
    assert len(none.get("image")) < 12
    sorted_ = run_page("pages/2_Gallery.py", dashboard_db, monkeypatch,
                       {**base, "sort": "confidence, lowest first", "cmap": "viridis", "alpha": "0.8"})
    assert sorted_.sidebar.selectbox(key="g_sort").value == "confidence, lowest first"
    assert sorted_.sidebar.selectbox(key="g_cmap").value == "viridis"
    assert sorted_.sidebar.slider(key="g_alpha").value == 0.8


def test_image_detail_from_url(dashboard_db, fixture_db, monkeypatch):
    from engine.dashboard import queries
    ds = queries.score_options(dashboard_db).dataset_id.iloc[0]
    models = queries.models(dashboard_db)
    model = models[models.init == "random"].model_id.iloc[0]  # the model with the depth ablation
    image = queries.gallery(dashboard_db, ds, model, "attention").image_id.iloc[0]
    at = run_page("pages/3_Image.py", dashboard_db, monkeypatch, {"dataset": ds, "model": model, "image": image})
    assert at.sidebar.selectbox(key="im_model").value == model
    assert len(at.get("image")) == 1 + 4  # the image + attention (3 depths) and chefer_gae
    assert len(at.get("plotly_chart")) == 2  # insertion and deletion curves
    scores = at.dataframe[0].value
    assert {"attention", "chefer_gae"} <= set(scores.index)
    missing = run_page("pages/3_Image.py", dashboard_db, monkeypatch, {"dataset": ds, "image": "nope"})
    assert any("No image nope in dataset" in i.value for i in missing.info)


@pytest.mark.parametrize("view,expect", [("strategy", "plotly"), ("agreement", "plotly"), ("regions", "plotly"),
                                         ("depth", "plotly"), ("sanity", "plotly"), ("faithfulness", "plotly"),
                                         ("confounders", "plotly")])
def test_compare_views(view, expect, dashboard_db, monkeypatch):
    from engine.dashboard import queries
    models = queries.models(dashboard_db)
    model = models[models.init == "random"].model_id.iloc[0]  # the model with the depth ablation
    at = run_page("pages/4_Compare.py", dashboard_db, monkeypatch, {"view": view, "model": model})
    assert at.sidebar.selectbox(key="cmp_view").value == view
    assert len(at.get("plotly_chart")) >= 1, texts(at)


def test_compare_depth_and_confounders_explain_missing_data(fixture_db, monkeypatch):
    at = run_page("pages/4_Compare.py", fixture_db, monkeypatch, {"view": "depth"})
    assert any("layer" in i.value for i in at.info)
    at = run_page("pages/4_Compare.py", fixture_db, monkeypatch, {"view": "confounders"})
    assert any("marker" in i.value for i in at.info)


def test_compare_confounders_flag_and_threshold(dashboard_db, monkeypatch):
    at = run_page("pages/4_Compare.py", dashboard_db, monkeypatch, {"view": "confounders"})
    table = at.dataframe[0].value
    assert set(table[table.flagged].method) == {"attention"}  # 0.6-0.7 on the marker vs 0.1-0.2
    at = run_page("pages/4_Compare.py", dashboard_db, monkeypatch, {"view": "confounders", "threshold": "0.05"})
    assert at.dataframe[0].value.flagged.all()


def test_compare_strategy_groups(dashboard_db, monkeypatch):
    at = run_page("pages/4_Compare.py", dashboard_db, monkeypatch, {"view": "strategy", "metric": "iou_top5"})
    dino, sup = "dino · trained", "supervised · untrained"  # pretraining · fine-tuning state
    assert set(at.dataframe[0].value.columns) == {sup, dino}
    models = at.dataframe[1].value.set_index("strategy")
    assert models.loc[dino, "pretrain_collapse"] == "uniform" and models.loc[dino, "pretrain_final_loss"] == 5.5
    assert models.loc[sup, "pretrain_collapse"] is None or pd.isna(models.loc[sup, "pretrain_collapse"])
    assert at.sidebar.selectbox(key="cmp_metric").value == "iou_top5"


def test_runs_page_filters(dashboard_db, monkeypatch):
    at = run_page("pages/5_Runs.py", dashboard_db, monkeypatch)
    history = at.dataframe[0].value
    assert len(history) == 2 and set(history.status) == {"finished", "failed"}
    assert len(at.dataframe[2].value) == 4  # all jobs
    assert "fixture: out of memory" in set(at.dataframe[3].value.reason)
    status = at.sidebar.selectbox(key="runs_status")
    status.set_value("failed")
    rerun(at)
    assert len(at.dataframe[2].value) == 2 and qp(at, "status") == "failed"
    failed_run = history[history.status == "failed"].run_id.iloc[0]
    at = run_page("pages/5_Runs.py", dashboard_db, monkeypatch, {"run": failed_run})
    assert at.sidebar.selectbox(key="runs_run").value == failed_run
    assert any("No failures recorded for this run" in s.value for s in at.success)
    assert at.get("json")  # the run's configuration


def test_gallery_page_number_is_clamped(dashboard_db, monkeypatch):
    at = run_page("pages/2_Gallery.py", dashboard_db, monkeypatch, {"method": "chefer_gae", "page": "99"})
    assert at.sidebar.number_input(key="g_page").value == 1 and qp(at, "page") == "1"
    assert len(at.get("image")) == 12


@pytest.mark.parametrize("page", PAGES)
def test_database_without_results_explains_how_to_add_them(page, tmp_path, monkeypatch):
    from engine.store import ResultWriter
    db = tmp_path / "fresh.duckdb"
    with ResultWriter(db):
        pass  # the current schema, no rows
    at = run_page(page, db, monkeypatch)
    assert any("engine demo" in i.value for i in at.info)
