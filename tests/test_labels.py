"""Method labels read as names with their parameters, never as raw JSON (older databases' pairwise labels too)."""
from __future__ import annotations

from engine.common.labels import method_label, relabel


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


def test_energy_pg_and_mass_accuracy_shown_once_where_they_coincide():
    import pandas as pd

    from engine.dashboard.overview import merge_coinciding
    rows = pd.DataFrame([
        ("attention", "energy_pg", "mask", "trained", 1, 10, 0.4),
        ("attention", "mass_accuracy", "mask", "trained", 1, 10, 0.4),   # non-negative map: same number
        ("saliency", "energy_pg", "mask", "trained", 1, 10, 0.5),
        ("saliency", "mass_accuracy", "mask", "trained", 1, 10, 0.3),    # signed map: they differ
        ("attention", "pointing_game", "mask", "trained", 1, 10, 1.0)],
        columns=["method", "metric", "region", "fine_tuning", "models", "n", "mean_of_model_means"])
    out = merge_coinciding(rows)
    assert sorted(out.metric[out.method == "attention"]) == ["energy_pg = mass_accuracy", "pointing_game"]
    assert sorted(out.metric[out.method == "saliency"]) == ["energy_pg", "mass_accuracy"]
    assert len(out) == 4 and out.loc[out.metric == "energy_pg = mass_accuracy", "mean_of_model_means"].item() == 0.4
    assert merge_coinciding(rows[rows.metric != "mass_accuracy"]).equals(rows[rows.metric != "mass_accuracy"])


def test_gallery_card_shows_the_chosen_score_only():
    from engine.dashboard.gallery import card_choice, card_score
    lines = ["energy_pg · mask 0.41", "iou_top5 · box 0.20", "pointing_game · box 1.00", "pointing_game · mask 0.00"]
    assert card_score(lines, "pointing_game · mask") == "pointing_game · mask 0.00"
    assert card_score(lines, "pointing_game · box") == "pointing_game · box 1.00"
    assert card_score(lines, "auprc · mask") == "auprc · mask: not scored"
    assert card_score(None, "iou_top5 · box") == "iou_top5 · box: not scored"
    assert card_score(lines, None) == "not scored"
    choices = ["iou_top5 · box", "pointing_game · mask"]
    assert card_choice(choices, "iou_top5 · box") == "iou_top5 · box"  # the filtered score
    assert card_choice(choices, "(none)") == "pointing_game · mask"
    assert card_choice(["iou_top5 · box"], None) == "iou_top5 · box" and card_choice([], None) is None


def test_url_parameter_notes():
    from engine.dashboard.urlparams import choice_note, number_note, range_note
    assert choice_note("method", "attention", ["attention", "rollout"], "attention") is None
    assert choice_note("method", None, ["attention"], "attention") is None
    note = choice_note("method", "nosuch", ["attention", "rollout"], "attention")
    assert "`method=nosuch` does not apply" in note and "showing `attention`" in note
    assert range_note("conf", "0.2~0.8", 0, 1) is None and range_note("conf", "", 0, 1) is None
    assert "not a range" in range_note("conf", "abc", 0, 1)
    assert "outside 0–1" in range_note("conf", "0.5~7", 0, 1)
    assert "swapped" in range_note("conf", "0.8~0.2", 0, 1)
    assert number_note("alpha", "0.5", 0, 1) is None and "not a number" in number_note("alpha", "x", 0, 1)
    assert "outside" in number_note("alpha", "3", 0, 1)


def test_legends_name_models_by_label():
    from engine.dashboard.labels import model_labels
    assert model_labels(["vit_demo:trained@abc123", "scratch@def456"]) == {
        "vit_demo:trained@abc123": "vit_demo:trained", "scratch@def456": "scratch"}
    both = model_labels(["scratch@aaa", "scratch@bbb", "mae@ccc"])  # one label twice: the whole ids
    assert both == {"scratch@aaa": "scratch@aaa", "scratch@bbb": "scratch@bbb", "mae@ccc": "mae"}
