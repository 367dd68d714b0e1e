"""The fine-tuned model first (engine/dashboard/focus.py) and the charts' legends (charts.py): hand-made rows."""
from __future__ import annotations

import pandas as pd

from engine.dashboard.charts import auc, with_auc
from engine.dashboard.focus import chance_lines, focus_model, method_order, model_order, untrained_models
from engine.dashboard.guards import NEAR_CHANCE

MODELS = pd.DataFrame({"dataset_id": ["d"] * 3, "model_id": ["vit:random@1", "vit:trained@2", "dino:trained@3"],
                       "fine_tuning": ["untrained", "trained", "trained"], "test_accuracy": [0.9, 0.8, 0.6]})


def test_the_fine_tuned_model_leads_even_when_the_twin_scores_higher():
    assert untrained_models(MODELS) == {"vit:random@1"}
    assert focus_model(MODELS, "d") == "vit:trained@2"
    assert focus_model(MODELS, "d", among=["vit:random@1"]) == "vit:random@1"  # only the twin: the twin
    assert focus_model(MODELS, "nope") is None
    assert model_order(MODELS.model_id, "dino:trained@3", {"vit:random@1"}) == [
        "dino:trained@3", "vit:trained@2", "vit:random@1"]


def test_methods_sorted_by_the_focus_model():
    board = pd.DataFrame({"model_id": ["a", "a", "b", "b", "b"], "method": ["x", "y", "x", "y", "z"],
                          "mean": [0.2, 0.9, 0.8, 0.1, 0.5]})
    assert method_order(board, "a", higher=True) == ["y", "x", "z"]  # z: not scored on a, after
    assert method_order(board, "b", higher=True) == ["x", "z", "y"]
    assert method_order(board, "b", higher=False) == ["y", "z", "x"]  # lower is better: lowest first
    assert method_order(board.iloc[:0], "a", True) == []


def test_the_twin_gets_a_note_not_the_warning():
    quality = pd.DataFrame({"model_id": ["vit:random@1", "vit:trained@2", "dino:trained@3"],
                            "near_chance": [True, False, True], "balanced_accuracy": [0.5, 0.9, 0.52]})
    warn, notes = chance_lines(quality, MODELS.model_id, "vit:trained@2", {"vit:random@1"})
    assert len(warn) == 1 and warn[0].startswith(f"dino:trained@3 — {NEAR_CHANCE} (balanced accuracy 0.52")
    assert notes == ["vit:random: random weights, at chance by design: the reference for the fine-tuned model, "
                     "not a finding."]
    assert chance_lines(quality, ["vit:trained@2"], "vit:trained@2", {"vit:random@1"}) == ([], [])


def test_auc_in_the_legend():
    assert auc([0, 0.5, 1], [1, 1, 0]) == 0.75  # 0.5 + 0.25 by hand
    assert auc([1, 0], [0, 1]) == 0.5  # sorted by x first
    assert auc([0], [1]) != auc([0], [1])  # one point: NaN
    curves = pd.DataFrame({"method": ["a"] * 2 + ["b"] * 2, "x": [0, 1, 0, 1], "y": [0, 0.2, 1, 1]})
    out = with_auc(curves)
    assert list(dict.fromkeys(out.method)) == ["b (AUC 1.000)", "a (AUC 0.100)"]  # highest first
