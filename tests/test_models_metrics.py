"""Classification metrics against hand-computed values; classification_report on a real split."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.data import ImageDataset, load_records
from engine.models import classification_report, create_model
from engine.models.evaluation import auroc_binary, report_from_probs

LABELS = [0, 0, 1, 1, 2]
PROBS = [[.7, .2, .1],   # true 0, pred 0
         [.4, .5, .1],   # true 0, pred 1
         [.2, .6, .2],   # true 1, pred 1
         [.3, .3, .4],   # true 1, pred 2
         [.1, .2, .7]]   # true 2, pred 2


def test_metrics_by_hand():
    r = report_from_probs(LABELS, PROBS, image_ids=list("abcde"))
    assert r["confusion"] == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]  # rows = true class
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert r["balanced_accuracy"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    # F1 per class: 2tp / (support + predicted) = 2/3, 2/4, 2/3
    assert r["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    # class 1 vs rest: positives score .6, .3; negatives .2, .5, .2 -> 5 of 6 pairs ordered
    assert r["auroc_per_class"] == pytest.approx([1.0, 5 / 6, 1.0])
    assert r["auroc"] == pytest.approx((1 + 5 / 6 + 1) / 3)
    p = r["predictions"][1]
    assert p == {"image_id": "b", "label": 0, "pred": 1, "correct": False, "probs": [.4, .5, .1]}


def test_auroc_ties_and_absent_class():
    assert auroc_binary([1, 0], [0.5, 0.5]) == 0.5
    assert math.isnan(auroc_binary([1, 1], [0.2, 0.3]))
    r = report_from_probs([0, 0, 1], [[.9, .05, .05], [.6, .3, .1], [.2, .7, .1]])
    assert math.isnan(r["auroc_per_class"][2]) and r["auroc"] == pytest.approx(1.0)  # class 2 absent: skipped
    assert r["balanced_accuracy"] == 1.0 and r["confusion"][2] == [0, 0, 0]
    empty = report_from_probs([], np.zeros((0, 3)))
    assert empty["n"] == 0 and math.isnan(empty["accuracy"]) and math.isnan(empty["auroc"])


def test_classification_report_on_split(smear_spec):
    records, classes = load_records(smear_spec)
    test = ImageDataset(smear_spec, "test", records=records, classes=classes)
    torch.manual_seed(0)
    model, info = create_model("vit_demo", len(classes))
    r = classification_report(model, info, test, "cpu")
    assert r["n"] == len(test) == len(r["predictions"]) and r["classes"] == list(classes)
    assert sum(map(sum, r["confusion"])) == len(test)
    probs = np.array([p["probs"] for p in r["predictions"]])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)
    assert {p["image_id"] for p in r["predictions"]} == {rec.image_id for rec in test.records}
    assert r["accuracy"] == pytest.approx(np.mean([p["correct"] for p in r["predictions"]]))
