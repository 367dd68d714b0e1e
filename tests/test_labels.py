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
