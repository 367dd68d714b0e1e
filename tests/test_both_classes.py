"""Misclassified images, both classes: the true-class maps and scores the runner stores, the table and
figure built from them, and a version-7 database opened by this version (schema 8)."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import unit_predictions

from engine.dashboard.classes import both_class_caption, both_class_table, class_name
from engine.dashboard.figure import Panel, render_svg
from engine.explain import run_methods, upsample_maps
from engine.metrics import METRICS
from engine.store import ResultWriter, check_database
from engine.store.schema import SCHEMA_VERSION


@pytest.fixture(scope="module")
def evaluated(smear_spec):
    from engine.data import ImageDataset, collate_samples, load_records
    from engine.models import create_model, normalise
    from engine.runner.evaluate import evaluate_model
    records, classes = load_records(smear_spec)
    ds = ImageDataset(smear_spec, "test", records=[r for r in records if r.split == "test"][:8], classes=classes)
    torch.manual_seed(0)
    model, info = create_model("vit_demo", len(classes))  # random weights: most images misclassified
    model.eval()
    res = evaluate_model(model, info, ds, run_id="r", dataset_id="d", model_id="m",
                         methods={"attention": {}, "chefer_gae": {}},
                         metrics={"pointing_game": {}, "energy_pg": {}, "insertion_auc": {"n_steps": 2}},
                         batch_size=3, progress=False)
    batch = collate_samples([ds[i] for i in range(len(ds))])
    ones = evaluate_model(model, info, ds, run_id="r", dataset_id="d", model_id="m", methods={"chefer_gae": {}},
                          metrics={"pointing_game": {}}, batch_size=1, progress=False)
    x = normalise(batch["image"], info)
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    preds = pd.DataFrame({"image_id": list(batch["image_id"]), "label": batch["label"].tolist(), "pred": pred.tolist()})
    return res, model, x, batch, ones, preds


def test_batch_of_n_equals_n_batches_of_one(evaluated):
    res, *_, ones, _ = evaluated
    key = ["image_id", "region"]
    a = res.target_scores[(res.target_scores.method == "chefer_gae") & (res.target_scores.metric == "pointing_game")]
    b = ones.target_scores
    assert len(a) == len(b) > 0
    np.testing.assert_allclose(a.sort_values(key).value.to_numpy(dtype=float),
                               b.sort_values(key).value.to_numpy(dtype=float), equal_nan=True)


def test_true_class_maps_for_exactly_the_misclassified_images(evaluated):
    res, _, _, batch, _, p = evaluated
    wrong = set(p[p.pred != p.label].image_id)
    assert wrong  # the fixture has misclassified images
    tm = res.target_maps
    assert set(tm.image_id) == wrong and set(tm.role) == {"true"}
    label = dict(zip(p.image_id, p.label))
    assert all(t == label[i] for i, t in zip(tm.image_id, tm.target))
    ts = res.target_scores
    assert set(ts.metric) == {"pointing_game", "energy_pg"}  # localisation only
    assert set(ts.region) == set(res.scores[res.scores.metric == "pointing_game"].region)
    assert all(t == label[i] for i, t in zip(ts.image_id, ts.target))


def test_true_class_scores_are_the_metric_of_the_true_class_map(evaluated):
    res, model, x, batch, _, preds = evaluated
    ids = list(batch["image_id"])
    p = preds.set_index("image_id").loc[ids]
    wrong = [i for i, (lab, pr) in enumerate(zip(p.label, p.pred)) if lab != pr]
    labels = torch.as_tensor(p.label.to_numpy().copy())[wrong]
    maps, _, _ = run_methods(model, x[wrong], ["chefer_gae"], labels, {"chefer_gae": {}})
    up = upsample_maps(maps["chefer_gae"], tuple(x.shape[-2:]))
    want = METRICS["pointing_game"](up, batch["regions"]["mask"][wrong])
    ts = res.target_scores
    got = ts[(ts.method == "chefer_gae") & (ts.metric == "pointing_game") & (ts.region == "mask")]
    got = got.set_index("image_id").loc[[ids[i] for i in wrong]].value.to_numpy(dtype=float)
    np.testing.assert_allclose(got, want, equal_nan=True)
    # the class-agnostic CLS attention map is the same for both classes
    tm = res.target_maps[res.target_maps.method == "attention"].set_index("image_id")
    ex = res.explanations[res.explanations.method == "attention"].set_index("image_id")
    for image_id in tm.index:
        np.testing.assert_array_equal(tm.loc[image_id, "map"], ex.loc[image_id, "map"])
        assert ex.loc[image_id, "target"] != tm.loc[image_id, "target"]


def test_both_class_table_hand_built():
    scores = pd.DataFrame({"image_id": ["a", "a", "b"], "metric": ["pointing_game", "energy_pg", "pointing_game"],
                           "metric_params": "{}", "region": "mask", "true_target": [2, 2, 0],
                           "pred_value": [0.0, 0.25, None], "true_value": [1.0, 0.75, 0.5]})
    labels = pd.DataFrame({"image_id": ["a", "b"], "label": [2, 0], "pred": [1, 2]})
    t = both_class_table(scores, labels, ["band neutrophil", "lymphocyte", "eosinophil granulocyte"])
    assert list(t["true class"]) == ["eosinophil granulocyte", "eosinophil granulocyte", "band neutrophil"]
    assert list(t["predicted class"]) == ["lymphocyte", "lymphocyte", "eosinophil granulocyte"]
    np.testing.assert_allclose(t["true − predicted"].to_numpy(dtype=float), [0.5, 1.0, np.nan], equal_nan=True)
    assert both_class_table(scores.iloc[0:0], labels, []).empty
    assert class_name(["x"], 3) == "3" and class_name(["x"], None) == "?"


def test_figure_titles_name_both_classes_in_full():
    long = "eosinophil granulocyte with a very long descriptive class name"
    title = both_class_caption("img_0001", ["band neutrophil", long], 1, 0)
    panel = Panel("img_0001", np.zeros((8, 8, 3), np.float32), {}, [np.ones((2, 2), np.float32)] * 2,
                  ["pointing_game 1.00", "pointing_game 0.00"], caption="img_0001", title=title)
    svg = render_svg([panel], ["chefer_gae · predicted", "chefer_gae · true"])
    text = " ".join(line.split(">", 1)[1].split("<", 1)[0] for line in svg.splitlines() if line.startswith("<text"))
    assert long in " ".join(text.split()) and "band neutrophil" in text and "…" not in text.split("img_0001:")[1]


def test_a_version_7_database_gets_the_new_tables(tmp_path):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.upsert("jobs", {"job_key": "a", "run_id": "r1", "kind": "train", "status": "done"})
    with duckdb.connect(str(db)) as con:  # as version 7 wrote it: no views, no manifest entries for them
        manifest = json.loads(con.execute("SELECT value FROM meta WHERE key = 'shards'").fetchone()[0])
        for t in ("target_maps", "target_scores"):
            con.execute(f"DROP VIEW {t}")
            manifest["tables"].pop(t, None)
            manifest.get("columns", {}).pop(t, None)
        con.execute("UPDATE meta SET value = ? WHERE key = 'shards'", [json.dumps(manifest)])
        con.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    assert check_database(db).version == 7
    with ResultWriter(db) as w:
        w.upsert("jobs", {"job_key": "b", "run_id": "r1", "kind": "train", "status": "done"})
    assert check_database(db).version == SCHEMA_VERSION == 8
    with duckdb.connect(str(db), read_only=True) as con:
        assert [r[0] for r in con.execute("SELECT job_key FROM jobs ORDER BY 1").fetchall()] == ["a", "b"]
        assert con.execute("SELECT count(*) FROM target_maps").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM target_scores").fetchone()[0] == 0


def test_gallery_and_image_pages_show_both_classes(evaluated, smear_spec, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from engine.data import load_records
    from engine.models import save_checkpoint
    from engine.runner.ingest import refresh_summaries, start_run, write_dataset, write_model
    res, model, *_, preds = evaluated
    records, classes = load_records(smear_spec)
    db = tmp_path / "both.duckdb"
    with ResultWriter(db) as w:
        run_id = start_run(w, "test", {})
        dataset_id = write_dataset(w, smear_spec, records, classes)
        from engine.models import create_model
        _, info = create_model("vit_demo", len(classes))
        sha = save_checkpoint(tmp_path / "m.safetensors", model, info, {"init": "random"})
        model_id = write_model(w, dataset_id=dataset_id, info=info, init="random", checkpoint=str(tmp_path / "m"),
                               sha256=sha, val_accuracy=None, test_accuracy=None, hparams={}, history=[])
        ids = {"run_id": run_id, "dataset_id": dataset_id, "model_id": model_id}
        written = unit_predictions(smear_spec, tmp_path / "m.safetensors", sha, **ids)  # the production path
        w.replace_rows("predictions", written[written.image_id.isin(preds.image_id)])
        for table in ("explanations", "scores", "target_maps", "target_scores"):
            w.replace_rows(table, getattr(res, table).assign(**ids))
        refresh_summaries(w, dataset_id, model_id)
    monkeypatch.setenv("XAI_DB", str(db))
    root = __import__("conftest").PROJECT_ROOT
    at = AppTest.from_file(str(root / "pages" / "2_Gallery.py"), default_timeout=120)
    at.query_params["outcome"] = "misclassified"
    at.query_params["method"] = "chefer_gae"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    wrong = preds[preds.pred != preds.label]
    first = sorted(wrong.image_id)[0]
    heads = [m.value for m in at.markdown if "true class" in m.value]
    assert any(first.replace("_", "\\_") in h for h in heads), heads
    caps = [c.value for c in at.caption if "class**" in c.value]
    assert any(c.startswith("**predicted class**") for c in caps) and any(c.startswith("**true class**") for c in caps)
    at = AppTest.from_file(str(root / "pages" / "3_Image.py"), default_timeout=120)
    at.query_params["image"] = first
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    label = int(wrong.set_index("image_id").loc[first, "label"])
    assert any(c.value.startswith(f"**true class** {classes[label]}") for c in at.caption if "class**" in c.value)
