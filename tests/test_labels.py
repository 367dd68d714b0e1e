"""Method labels read as names with their parameters, never as raw JSON (older databases' pairwise labels too)."""
from __future__ import annotations

from engine.metrics.summaries import method_label, relabel


def test_method_label_by_hand():
    assert method_label("integrated_gradients", '{"n_steps":8}') == "integrated_gradients (n_steps=8)"
    assert method_label("attention", {"layer": -1}) == "attention (layer=-1)"
    assert method_label("smoothgrad", '{"stdev":0.15,"nt_samples":4}') == "smoothgrad (nt_samples=4, stdev=0.15)"
    assert method_label("occlusion", '{"mode":"zero"}') == "occlusion (mode=zero)"
    for empty in ("{}", "", None, {}):
        assert method_label("rollout", empty) == "rollout"


def test_relabel_reads_the_stored_form():
    assert relabel('attention {"layer":0}') == "attention (layer=0)"
    assert relabel("chefer_lrp") == "chefer_lrp"
    assert relabel(method_label("attention", '{"layer":2}')) == "attention (layer=2)"  # today's form unchanged


def test_compare_opens_on_the_dataset_with_a_strategy_comparison():
    import pandas as pd

    from engine.dashboard.compare import strategy_dataset
    rows = pd.DataFrame({"dataset_id": ["a", "a", "b", "b", "b", "b", "c"],
                         "pretraining": ["none", "none", "none", "supervised", "dino", "none", "mae"],
                         "fine_tuning": ["trained", "untrained", "trained", "trained", "trained", "untrained",
                                         "trained"]})
    assert strategy_dataset(rows) == "b"  # three strategies among its fine-tuned models
    assert strategy_dataset(rows[rows.dataset_id != "b"]) == "a"  # a tie: the first
    assert strategy_dataset(rows.iloc[:0]) is None


def test_pretraining_and_fine_tuning_fields():
    from engine.runner.ingest import fine_tuning_of, pretraining_of
    assert [pretraining_of(s) for s in ("random", None, "supervised", "hub:augreg")] == \
        ["none", "none", "supervised", "hub:augreg"]
    assert [fine_tuning_of(i) for i in ("random", "trained", "supervised-ft")] == ["untrained", "trained", "trained"]
