"""A dataset's regions are written with it at ingest (``datasets.regions``, ``mask_regions``, ``box_regions``,
``box_from_mask``) and read back from there by the dashboard and the CLI, whatever their names; a row
written before those columns existed falls back to its stored spec, once, in ``stored_regions``."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.cli.names import resolve_dataset, resolve_region
from engine.dashboard import queries
from engine.dashboard.figure import image_as_scored
from engine.data import DatasetSpec, load_records
from engine.runner.ingest import write_dataset
from engine.store import ResultWriter
from engine.store.schema import columns

REGIONS = ("lesion", "box_from_mask", "tumour_box")


@pytest.fixture(scope="module")
def lesion_db(tmp_path_factory):
    from engine.data.synthetic.smear import CLASSES, SmearConfig, generate_blood_smear
    tmp = tmp_path_factory.mktemp("lesion")
    root = generate_blood_smear(tmp / "smear", SmearConfig(n_train=2, n_val=1, n_test=2), progress=False)
    spec = DatasetSpec.from_dict(dict(
        name="lesions", root=str(root), labels="labels.csv", image_template="images/{id}.png",
        split_column="split", mask_template="masks/{id}.png", mask_regions={"lesion": [255]},
        box_from_mask="lesion", boxes_template="annotations/{id}.xml", box_regions={"tumour_box": ["WBC"]},
        input_size=64, classes=list(CLASSES)))
    records, classes = load_records(spec)
    db = tmp / "r.duckdb"
    with ResultWriter(db) as w:
        did = write_dataset(w, spec, records, classes)
        # summary rows on every region, listed so that sorted order would not give the dataset's order
        rows = [{c: None for c, _ in columns("summary")} | {
            "dataset_id": did, "model_id": "m", "method": "attention", "method_version": 1, "method_params": "{}",
            "metric": "pointing_game", "metric_version": 1, "metric_params": "{}", "region": r, "n": 1,
            "n_undefined": 0, "mean": 0.5} for r in sorted(REGIONS)]
        w.replace_rows("summary", pd.DataFrame(rows))
    return db, did, spec, records[0].image_id


def _stored(db, did) -> dict:
    return queries.frame(db, "SELECT * FROM datasets WHERE dataset_id = ?", [did]).iloc[0].to_dict()


def test_ingest_writes_the_region_columns(lesion_db):
    db, did, _, _ = lesion_db
    row = _stored(db, did)
    assert tuple(row["regions"]) == REGIONS
    assert tuple(row["mask_regions"]) == ("lesion",) and tuple(row["box_regions"]) == ("tumour_box",)
    assert row["box_from_mask"] == "lesion"
    r = queries.dataset_regions(db, did)
    assert (r.all, r.masks, r.boxes, r.box_from_mask) == (REGIONS, ("lesion",), ("tumour_box",), "lesion")
    assert queries.dataset_regions(db, "no-such-dataset").all == ()


def test_cli_and_figure_rows_read_them(lesion_db):
    db, did, _, image_id = lesion_db
    scope = resolve_dataset(db, "lesions")
    assert resolve_region(scope, "pointing_game", None) == "lesion"  # the first mask region, not sorted first
    _, sample, order, outlines, _, _ = image_as_scored(db, did, "m", image_id)
    assert order == REGIONS and list(outlines) == list(REGIONS) == list(sample.regions)[:3]


def test_a_row_without_the_columns_falls_back_to_its_spec(lesion_db, tmp_path):
    db, did, spec, _ = lesion_db
    row = _stored(db, did)
    old = tmp_path / "old.duckdb"
    keep = {k: row[k] for k in ("dataset_id", "name", "root", "fingerprint", "classes", "input_size",
                                "resize_mode", "n_images")}
    with ResultWriter(old) as w:  # a row as a version-7 ingest wrote it: the region columns NULL
        w.upsert("datasets", keep | {"classes": list(keep["classes"]), "spec": spec.to_dict()})
        w.replace_rows("summary", queries.frame(db, "SELECT * FROM summary"))
    assert _stored(old, did)["regions"] is None
    assert queries.dataset_regions(old, did).all == REGIONS  # read once from the stored spec
    assert resolve_region(resolve_dataset(old, "lesions"), "pointing_game", None) == "lesion"
    with ResultWriter(old) as w:  # and a spec this version cannot read: no regions, names shown sorted
        w.upsert("datasets", keep | {"classes": list(keep["classes"]), "spec": {"bogus": 1}})
    assert queries.dataset_regions(old, did).all == ()
    assert resolve_region(resolve_dataset(old, "lesions"), "pointing_game", None) == "box_from_mask"
