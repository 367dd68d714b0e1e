"""A small run on the docs' two example layouts (generated trees) and the dashboard on its database:
the regions scored are the dataset's own, the pixels drawn are the pixels scored, every region is
outlined with its name, and a dataset whose template matches nothing is stopped with the reason."""
from __future__ import annotations

import duckdb
import numpy as np
import pytest
from test_pages import run_page, texts

from engine.dashboard import queries
from engine.dashboard.guards import NEAR_CHANCE
from engine.dashboard.images import load_row_sample
from engine.data import DatasetSpec, ImageDataset, load_sample

pytestmark = pytest.mark.slow  # end-to-end: a run on the docs' example layouts


def _ids(db) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute("SELECT name, dataset_id FROM datasets").fetchall())


def test_run_scores_the_datasets_own_regions_and_stops_the_broken_one(layout_run):
    db, report, _, _ = layout_run
    ids = _ids(db)
    assert set(ids) == {"breast_us", "smear_yolo"}  # the broken dataset is not in the database ...
    with duckdb.connect(str(db), read_only=True) as con:
        regions = dict(con.execute("SELECT d.name, list(DISTINCT s.region ORDER BY s.region) FROM scores s "
                                   "JOIN datasets d USING (dataset_id) GROUP BY d.name").fetchall())
        reason = con.execute("SELECT reason FROM failures WHERE job_key = 'dataset:broken_masks'").fetchone()[0]
    assert regions == {"breast_us": ["box_from_mask", "tumour"], "smear_yolo": ["platelets", "wbc"]}
    # ... but stopped with the reason, and the run says it failed
    assert "mask_template 'masks/{stem}_m*.png' matches no file for any of the 36 images" in reason
    assert report.failed_jobs == 1 and not report.ok


def test_displayed_region_equals_scored_for_a_two_mask_image(layout_run):
    db, _, breast, _ = layout_run
    dataset_id = _ids(db)["breast_us"]
    with duckdb.connect(str(db), read_only=True) as con:
        model_id = con.execute("SELECT model_id FROM models").fetchone()[0]
    row = queries.image_detail(db, dataset_id, model_id, "benign/b000.png").iloc[0].to_dict()
    shown = load_row_sample(row)
    spec = DatasetSpec.from_dict({**__import__("json").loads(row["spec"]), "root": row["root"]})
    ds = ImageDataset(spec)
    k = next(i for i, r in enumerate(ds.records) if r.image_id == "benign/b000.png")
    scored = ds[k]
    assert len(ds.records[k].more_masks) == 1  # two mask files
    assert list(shown.regions) == list(scored.regions) == ["tumour", "box_from_mask"]
    for name in scored.regions:
        assert np.array_equal(shown.regions[name].numpy(), scored.regions[name].numpy()), name
    # the union differs from the first mask file alone, which the dashboard used to draw
    from dataclasses import replace
    first_only = load_sample(replace(ds.records[k], more_masks=()), spec)
    assert not np.array_equal(first_only.regions["tumour"].numpy(), scored.regions["tumour"].numpy())


def page_text(at) -> str:
    """The page's text with markdown escapes removed (region names are escaped as user data)."""
    return texts(at).replace("\\", "")


def test_pages_use_the_datasets_region_names(layout_run, monkeypatch):
    db, _, _, _ = layout_run
    ids = _ids(db)
    at = run_page("pages/1_Leaderboard.py", db, monkeypatch, {"dataset": ids["breast_us"]})
    assert at.sidebar.selectbox(key="lb_region").value == "tumour"  # the first mask region, not box_from_mask
    assert at.sidebar.selectbox(key="lb_region").options == ["tumour", "box_from_mask"]
    at = run_page("pages/2_Gallery.py", db, monkeypatch, {"dataset": ids["breast_us"]})
    assert "outline: cyan = tumour, lime = box_from_mask" in page_text(at) and len(at.get("image")) > 0
    at = run_page("pages/2_Gallery.py", db, monkeypatch, {"dataset": ids["smear_yolo"]})
    assert "outline: cyan = wbc, lime = platelets" in page_text(at)
    at = run_page("pages/3_Image.py", db, monkeypatch, {"dataset": ids["breast_us"], "image": "benign/b000.png"})
    # the tiny model is (rightly) flagged near chance; no other warning (e.g. a region that cannot be drawn)
    others = [w.value for w in at.warning if NEAR_CHANCE not in w.value.replace("\\", "")]
    assert "outline: cyan = tumour, lime = box_from_mask" in page_text(at) and not others
    at = run_page("pages/4_Compare.py", db, monkeypatch, {"dataset": ids["breast_us"], "view": "regions"})
    assert at.sidebar.selectbox(key="cmp_pair").value == "tumour vs box_from_mask"
    assert "method means on box_from_mask vs tumour" in page_text(at)
    at = run_page("pages/4_Compare.py", db, monkeypatch, {"dataset": ids["smear_yolo"], "view": "regions"})
    assert "no method scored on both a mask region and a box region (its regions: wbc, platelets)" in page_text(at)
