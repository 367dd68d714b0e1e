"""The shortcut check (engine.data.shortcut): metadata alone predicting the label."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.dashboard.shortcuts import agreement_table, result_of, shortcut_lines, stored_check
from engine.data.shortcut import (
    MARGIN,
    ShortcutResult,
    agreement,
    balanced_accuracy,
    bootstrap_balanced_accuracy,
    dataset_shortcut,
    image_metadata,
    shortcut_check,
)

CLASSES = ("negative", "positive")


def two_sources(n: int = 80, seed: int = 0, share: float = 0.9):
    """A merged set: source A (64 x 64 PNG) holds ``share`` of the positives, source B (96 x 80) the rest and
    ``share`` of the negatives; the content is noise of one brightness for both classes."""
    rng = np.random.default_rng(seed)
    ids, labels, splits, meta = [], [], [], []
    for k in range(n):
        label = k % 2
        from_a = rng.random() < (share if label else 1 - share)
        w, h = (64, 64) if from_a else (96, 80)
        ids.append(f"i{k:03d}")
        labels.append(label)
        splits.append("test" if k % 4 in (0, 1) else "train")
        meta.append({"width": w, "height": h, "aspect": w / h, "format": "PNG", "bit_depth": 8,
                     "mean_intensity": float(rng.uniform(0.4, 0.6))})
    return ids, labels, splits, meta


def test_balanced_accuracy_by_hand():
    y, pred = np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0])
    assert balanced_accuracy(y, pred) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert bootstrap_balanced_accuracy(np.array([0, 1, 1]), np.array([0, 1, 1])) == (1.0, 1.0)


def test_size_predicts_the_label_and_is_flagged():
    ids, labels, splits, meta = two_sources()
    res = shortcut_check(ids, labels, splits, meta, CLASSES)
    assert res.reason is None and res.flagged
    assert set(res.features) <= {"width", "height", "aspect"} and res.features
    assert res.ci_low > res.chance + MARGIN and res.chance == 0.5
    assert res.line().startswith("the label is predictable from ") and "alone (balanced accuracy" in res.line()
    assert set(res.test_predictions) == {i for i, s in zip(ids, splits) if s == "test"}
    # a model that learned the source agrees with the rule on every image it predicts
    assert agreement(res.test_predictions, dict(res.test_predictions)) == (1.0, res.n_test)


def test_no_shortcut_when_size_does_not_follow_the_label():
    ids, labels, splits, meta = two_sources(share=0.5, seed=3)
    res = shortcut_check(ids, labels, splits, meta, CLASSES)
    assert res.reason is None and not res.flagged
    assert res.line().startswith("metadata alone does not clearly predict the label")


def test_an_extra_table_column_is_a_feature():
    ids, labels, splits, meta = two_sources(share=0.5, seed=1)
    meta = [{**m, "site": "north" if lab else "south"} for m, lab in zip(meta, labels)]
    res = shortcut_check(ids, labels, splits, meta, CLASSES)
    assert res.flagged and res.features == ("site",) and res.balanced_accuracy == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_order_of_the_images_does_not_matter(seed):
    ids, labels, splits, meta = two_sources(seed=seed)
    perm = np.random.default_rng(seed).permutation(len(ids))
    a = shortcut_check(ids, labels, splits, meta, CLASSES)
    b = shortcut_check([ids[i] for i in perm], [labels[i] for i in perm], [splits[i] for i in perm],
                       [meta[i] for i in perm], CLASSES)
    assert a.balanced_accuracy == b.balanced_accuracy and a.features == b.features
    assert a.test_predictions == b.test_predictions
    # a constant extra column changes nothing
    c = shortcut_check(ids, labels, splits, [{**m, "site": "x"} for m in meta], CLASSES)
    assert c.balanced_accuracy == a.balanced_accuracy and c.features == a.features


def test_bad_input_says_why():
    ids, labels, splits, meta = two_sources()
    one = shortcut_check(ids, [0 if s == "test" else lab for lab, s in zip(labels, splits)], splits, meta, CLASSES)
    assert one.reason == "the test split has one class ('negative'): balanced accuracy needs two classes"
    assert one.line().startswith("shortcut check not run: the test split has one class")
    flat = [{"width": 64, "height": 64, "aspect": 1.0, "format": "PNG", "bit_depth": 8, "mean_intensity": 0.5}
            for _ in ids]
    same = shortcut_check(ids, labels, splits, flat, CLASSES)
    assert same.reason.startswith("the metadata is the same for every image") and not same.flagged
    # one size, format and depth: only the mean intensity varies, and the line says so
    flat_but_bright = [{**m, "mean_intensity": 0.4 + 0.001 * k} for k, m in enumerate(flat)]
    only = shortcut_check(ids, labels, splits, flat_but_bright, CLASSES)
    assert only.reason is None and only.candidates == ("mean_intensity",)
    assert only.line().endswith("; width, height, format and bit depth are the same for every image")
    none = shortcut_check(ids, labels, ["train"] * len(ids), meta, CLASSES)
    assert none.reason.startswith("the test split has no image")


def test_image_metadata_of_files(tmp_path):
    Image.fromarray(np.full((10, 20), 255, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((4, 4), 1000, np.uint16)).save(tmp_path / "b.png")
    a, b = image_metadata(tmp_path / "a.png"), image_metadata(tmp_path / "b.png")
    assert (a["width"], a["height"], a["aspect"], a["format"], a["bit_depth"]) == (20, 10, 2.0, "PNG", 8)
    assert a["mean_intensity"] == 1.0
    assert b["bit_depth"] in (16, 32) and b["mean_intensity"] > 0
    (tmp_path / "c.png").write_bytes(b"not an image")
    assert image_metadata(tmp_path / "c.png")["width"] is None


def test_agreement_table_by_hand():
    rule = ShortcutResult(test_predictions={"a": 0, "b": 1, "c": 1}, flagged=True)
    preds = pd.DataFrame([("m1", "a", 0), ("m1", "b", 1), ("m1", "c", 0), ("m1", "z", 1), ("m2", "a", 1)],
                         columns=["model_id", "image_id", "pred"])
    t = agreement_table(rule, preds).set_index("model_id")
    assert t.loc["m1", "n"] == 3 and t.loc["m1", "agreement"] == pytest.approx(2 / 3)   # 'z' is not a test image
    assert t.loc["m2", "n"] == 1 and t.loc["m2", "agreement"] == 0.0
    assert agreement_table(ShortcutResult(reason="x"), preds).empty
    # a stored row reads back as the result it was written from
    back = result_of({"features": ["width"], "candidates": ["width", "height"], "n_train": 8, "n_test": 4,
                      "balanced_accuracy": 0.9, "ci_low": 0.8, "ci_high": 1.0, "chance": 0.5, "flagged": True,
                      "rule": "r", "reason": None, "test_predictions": '{"a": 1}'})
    assert back.line() == "the label is predictable from width alone (balanced accuracy 0.90 [0.80, 1.00]; chance 0.50)"
    assert back.test_predictions == {"a": 1}
    # as DuckDB hands a list column to pandas: numpy arrays (the e2e run's Overview crashed on them once)
    arrays = result_of({"features": np.array(["width", "height"]), "candidates": np.array(["width", "height"]),
                        "flagged": False, "test_predictions": None})
    assert arrays.features == ("width", "height") and arrays.candidates == ("width", "height")


def test_stored_at_ingest_and_the_demo_smear_set_is_not_flagged(fixture_db):
    from engine.dashboard import queries
    dataset_id = queries.datasets(fixture_db).dataset_id.iloc[0]
    result, preds = stored_check(fixture_db, dataset_id)
    assert result is not None and result.n_test == 12 and not result.flagged
    lines = shortcut_lines(fixture_db, dataset_id)
    assert lines[0][0] == "info" and lines[0][1].startswith("Shortcut check: ") and len(lines) == 1


@pytest.mark.parametrize("name", ["ultrasound", "confounded"])
def test_the_demo_sets_are_not_flagged(tmp_path, name):
    from engine.data import load_records
    from engine.data.synthetic import GENERATORS
    cfg_cls, generate, make_spec = GENERATORS[name]
    small = {"n_train": 400, "n_val": 4, "n_test": 64}   # the default demo's train and test sizes
    cfg = cfg_cls(**small) if name == "ultrasound" else cfg_cls(ultrasound=replace(cfg_cls().ultrasound, **small))
    spec = make_spec(generate(tmp_path, cfg, progress=False))
    records, classes = load_records(spec)
    res = dataset_shortcut(spec, records, classes)
    assert res.reason is None and not res.flagged, res.line()


def test_a_rule_on_mean_intensity_alone_is_reported_not_flagged():
    # the classes differ in brightness (content, e.g. a lesion), every image has one size
    ids, labels, splits, meta = two_sources(share=0.5, seed=2)
    meta = [{**m, "width": 64, "height": 64, "aspect": 1.0, "mean_intensity": 0.3 + 0.2 * lab + 0.01 * (k % 5)}
            for k, (m, lab) in enumerate(zip(meta, labels))]
    res = shortcut_check(ids, labels, splits, meta, CLASSES)
    assert res.features == ("mean_intensity",) and res.beats_chance() and not res.flagged
    assert "an image statistic that the classes' own content can explain: not flagged" in res.line()
