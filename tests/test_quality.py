"""The guards of engine.metrics.quality and the summaries: hand-computed cases and properties."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from guards_fixtures import train_on_shuffled_labels
from score_rows import score_rows

from engine.common.labels import degenerate_share
from engine.common.verdicts import headline, is_near_chance, verdict
from engine.metrics.quality import (
    accuracy_with_ci,
    centre_coverage,
    centre_pixels,
    chance_levels,
    degenerate_kinds,
    model_quality,
    paired_difference,
    random_twin,
)
from engine.metrics.stats import bootstrap_ci
from engine.metrics.summaries import (
    DEGENERATE_COLUMNS,
    SCORE_COLUMNS,
    shared_images,
    substrate_of,
    summarise,
)

# -- model quality --------------------------------------------------------------------------------

def test_accuracy_and_balanced_accuracy_by_hand():
    # labels 0,0,0,0,1,1 ; predictions right on 3 of the 0s and 1 of the 1s
    q = accuracy_with_ci([0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0], seed=0)
    assert q["n"] == 6
    assert q["accuracy"] == pytest.approx(4 / 6)
    assert q["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    for key in ("accuracy", "balanced_accuracy"):
        lo, hi = q[f"{key}_ci"]
        assert 0 <= lo <= q[key] <= hi <= 1
    assert accuracy_with_ci([0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0], seed=0) == q  # seeded


def test_perfect_predictions_have_a_degenerate_interval():
    q = accuracy_with_ci([0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 1, 2])
    assert q["balanced_accuracy_ci"] == (1.0, 1.0) and q["accuracy_ci"] == (1.0, 1.0)


def test_chance_levels_by_hand():
    assert chance_levels([0, 0, 0, 1]) == (0.75, 0.5)
    assert chance_levels([2, 2, 0]) == (pytest.approx(2 / 3), 0.5)  # class 1 absent: K = 2 present
    assert np.isnan(chance_levels([])[0])


def test_paired_difference_by_hand():
    d, lo, hi = paired_difference([0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0])
    assert d == pytest.approx(1.0 - 0.5)
    assert lo <= d <= hi
    same = paired_difference([0, 1, 0, 1], [0, 1, 1, 1], [0, 1, 1, 1])
    assert same == (0.0, 0.0, 0.0)


def test_near_chance_rule():
    assert is_near_chance(0.30, 1 / 3)       # CI reaches chance
    assert not is_near_chance(0.40, 1 / 3)   # CI above chance
    assert is_near_chance(float("nan"), 0.5)  # too few images to say
    assert is_near_chance(1 / 3, 1 / 3)       # touching counts


@pytest.mark.parametrize("seed", range(5))
def test_quality_properties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 40)
    p = np.where(rng.random(40) < 0.6, y, rng.integers(0, 3, 40))
    q = accuracy_with_ci(y, p, n_resamples=500, seed=seed)
    for key in ("accuracy", "balanced_accuracy"):
        lo, hi = q[f"{key}_ci"]
        assert 0 <= lo <= hi <= 1
    # relabelling the classes does not change either score
    perm = np.array([2, 0, 1])
    q2 = accuracy_with_ci(perm[y], perm[p], n_resamples=500, seed=seed)
    assert q2["accuracy"] == pytest.approx(q["accuracy"])
    assert q2["balanced_accuracy"] == pytest.approx(q["balanced_accuracy"])
    d, lo, hi = paired_difference(y, p, p, n_resamples=200)
    assert d == lo == hi == 0.0


def _models():
    return pd.DataFrame({"dataset_id": ["d", "d", "d", "e"], "model_id": ["t", "r", "other", "t2"],
                         "name": ["vit", "vit", "deit", "vit"], "init": ["trained", "random", "trained", "trained"]})


def test_random_twin_is_same_dataset_and_architecture():
    m = _models()
    assert random_twin(m, "t") == "r"
    assert random_twin(m, "r") is None        # a random model has no twin
    assert random_twin(m, "other") is None    # another architecture
    assert random_twin(m, "t2") is None       # another dataset


def test_model_quality_rows_flag_and_twin():
    labels = [0, 1, 2] * 10
    preds = pd.DataFrame(
        [("d", "t", f"i{k}", y, y) for k, y in enumerate(labels)]                      # perfect
        + [("d", "r", f"i{k}", y, 0) for k, y in enumerate(labels)]                    # always class 0
        + [("d", "other", f"i{k}", y, (y + 1) % 3) for k, y in enumerate(labels)],     # always wrong
        columns=["dataset_id", "model_id", "image_id", "label", "pred"])
    q = model_quality(preds, _models()).set_index("model_id")
    assert not q.loc["t", "near_chance"] and q.loc["t", "balanced_accuracy"] == 1.0
    assert q.loc["r", "near_chance"] and q.loc["r", "balanced_accuracy"] == pytest.approx(1 / 3)
    assert q.loc["other", "near_chance"]  # below chance is flagged too
    assert q.loc["t", "twin_model_id"] == "r" and q.loc["t", "twin_diff"] == pytest.approx(2 / 3)
    assert q.loc["r", "twin_model_id"] is None
    assert q.loc["t", "chance_uniform"] == pytest.approx(1 / 3) and \
        q.loc["t", "chance_majority"] == pytest.approx(1 / 3)


def test_a_model_trained_on_shuffled_labels_is_flagged(smear_spec):
    """The generated near-chance case: a tiny ViT fine-tuned on permuted training labels."""
    from engine.data import ImageDataset
    from engine.models.evaluation import predict
    model, info, records, classes = train_on_shuffled_labels(smear_spec)
    out = predict(model, info, ImageDataset(smear_spec, "test", records=records, classes=classes))
    preds = pd.DataFrame({"dataset_id": "d", "model_id": "shuffled", "image_id": out["image_ids"],
                          "label": out["labels"], "pred": out["probs"].argmax(1)})
    q = model_quality(preds, pd.DataFrame({"dataset_id": ["d"], "model_id": ["shuffled"], "name": ["vit_demo"],
                                           "init": ["trained"]}))
    assert bool(q.near_chance.iloc[0]), q.to_dict("records")


# -- degenerate maps and centre coverage ----------------------------------------------------------

def test_degenerate_kinds_by_hand():
    maps = torch.stack([torch.zeros(2, 3), torch.full((2, 3), -2.5), torch.arange(6.).view(2, 3),
                        torch.tensor([[0., 1, float("inf")], [0, 0, 0]]), torch.full((2, 3), 1.0) + torch.tensor(
                            [[0, 1e-9, 0], [0, 0, 0]])])
    assert degenerate_kinds(maps) == ["zero", "constant", None, "nonfinite", "constant"]


@pytest.mark.parametrize("seed", range(3))
def test_degenerate_kinds_property(seed):
    m = torch.rand(4, 5, 5, generator=torch.Generator().manual_seed(seed)) + 0.1
    assert degenerate_kinds(m) == [None] * 4
    assert degenerate_kinds(m * 0) == ["zero"] * 4
    assert degenerate_kinds(m[:, :1, :1].expand(4, 5, 5) * 7) == ["constant"] * 4


def test_centre_pixels_and_coverage_by_hand():
    assert centre_pixels(5, 5) == ([2], [2])
    assert centre_pixels(4, 6) == ([1, 2], [2, 3])
    r = torch.zeros(3, 4, 4, dtype=torch.bool)
    r[0, 2, 2] = True             # touches the centre point (2x2 centre block of an even image)
    r[1, 0, 0] = True             # a corner
    r[2] = True
    covers, area = centre_coverage(r)
    assert covers.tolist() == [True, False, True]
    assert area.tolist() == [1 / 16, 1 / 16, 1.0]


# -- baselines --------------------------------------------------------------------------------------

def test_verdict_rule():
    assert verdict(0.1, 0.01, True) == "beats"
    assert verdict(-0.1, 0.01, True) == "below"
    assert verdict(-0.1, 0.01, False) == "beats"   # lower is better (deletion)
    assert verdict(0.1, 0.2, True) == "n.s."
    assert verdict(None, None, True) is None


def _rows(**cols):
    return pd.DataFrame(cols)


def test_headline():
    rows = _rows(method=["a", "b"], gap_random=[0.2, 0.1], p_random=[0.001, 0.01], gap_centre=[0.1, -0.05],
                 p_centre=[0.01, 0.5])
    assert headline(rows, True) == "a beats both baselines (Holm p < 0.05)"
    none = rows.assign(p_centre=[0.3, 0.5])
    assert headline(none, True) == "no method beats the centre baseline"
    below = rows.assign(gap_centre=[-0.1, -0.2], p_centre=[0.01, 0.01])
    assert headline(below, True) == "no method beats the centre baseline"
    nobase = rows.assign(p_random=[None, None], p_centre=[None, None], gap_random=[None, None],
                         gap_centre=[None, None])
    assert "no baseline map was run" in headline(nobase, True)


# -- summaries ----------------------------------------------------------------------------------------

def _scores(values: dict[str, list[float | None]], metric="pointing_game", region="mask") -> pd.DataFrame:
    frames = [score_rows({f"i{k:02d}": v for k, v in enumerate(vals)}, method=method, metric=metric, region=region)
              for method, vals in values.items()]
    return pd.concat(frames, ignore_index=True)[SCORE_COLUMNS]


def test_summarise_degenerate_and_baseline_gaps():
    n = 12
    vals = {"good": [1.0] * n, "baseline_random": [0.0] * (n - 2) + [1.0, 0.0],
            "baseline_centre": [0.0] * (n - 1) + [1.0], "dead": [None] * 3 + [1.0] * (n - 3)}
    deg = pd.DataFrame([("dead", 1, "{}", f"i{k:02d}", "zero") for k in (0, 1)], columns=DEGENERATE_COLUMNS)
    summary, pairwise = summarise(_scores(vals), "d", "m", degenerate=deg)
    s = summary.set_index("method")
    assert s.loc["dead", "n"] == n - 3 and s.loc["dead", "n_degenerate"] == 2 and s.loc["dead", "n_undefined"] == 1
    assert s.loc["good", "n_degenerate"] == 0
    # mean paired difference over the shared images i03..i11 ('dead' has no score on i00..i02): the random map
    # hits once among them (i10), the centre map once (i11)
    assert s.loc["good", "gap_random"] == pytest.approx(1.0 - 1 / 9)
    assert s.loc["good", "gap_centre"] == pytest.approx(1.0 - 1 / 9)
    assert set(s["n_common"]) == {9}
    # the gap's CI: the bootstrap interval of the same paired differences (8 hits vs the random map's 1 of 9)
    diffs = [1.0] * 7 + [0.0, 1.0]
    assert (s.loc["good", "gap_random_ci_low"], s.loc["good", "gap_random_ci_high"]) == bootstrap_ci(diffs, seed=0)
    assert s.loc["good", "gap_random_ci_low"] <= s.loc["good", "gap_random"] <= s.loc["good", "gap_random_ci_high"]
    assert pd.isna(s.loc["baseline_random", "gap_random_ci_low"])  # no gap to itself, no interval
    # a call that does not test this metric keeps the stored gaps and their intervals
    kept, _ = summarise(_scores(vals), "d", "m", degenerate=deg, previous=summary, pairwise_metrics=set())
    kept = kept.set_index("method")
    assert kept.loc["good", "gap_random_ci_high"] == s.loc["good", "gap_random_ci_high"]
    p = pairwise[(pairwise.method_a == "baseline_random") & (pairwise.method_b == "good")].p_holm.iloc[0]
    assert s.loc["good", "p_random"] == pytest.approx(p)
    # the direction follows method - baseline whichever way the pair is stored
    assert s.loc["baseline_centre", "gap_random"] == pytest.approx(
        -pairwise[(pairwise.method_a == "baseline_centre") & (pairwise.method_b == "baseline_random")
                  ].mean_diff.iloc[0])
    assert pd.isna(s.loc["baseline_random", "gap_random"])  # a baseline has no gap to itself
    assert s.loc["good", "substrate"] is None


def test_summarise_ranks_over_the_shared_images():
    # 'sparse' scores 1.0 on the 2 images it has a score on (its other maps are all zero); 'steady' scores 0.5
    # everywhere but 1.0 on those two: over its own images sparse looks best (1.0 vs 0.6), over the shared ones
    # the two tie at 1.0, and the paired test uses only those 2 images
    vals = {"sparse": [1.0, 1.0, None, None, None], "steady": [1.0, 1.0, 0.5, 0.5, 0.0],
            "baseline_centre": [0.0, 1.0, 0.0, 0.0, 0.0]}
    deg = pd.DataFrame([("sparse", 1, "{}", f"i{k:02d}", "zero") for k in (2, 3, 4)], columns=DEGENERATE_COLUMNS)
    summary, pairwise = summarise(_scores(vals), "d", "m", degenerate=deg)
    s = summary.set_index("method")
    assert s.loc["sparse", "mean"] == 1.0 and s.loc["steady", "mean"] == pytest.approx(0.6)
    assert s.loc["sparse", "mean_common"] == 1.0 and s.loc["steady", "mean_common"] == 1.0
    assert s.loc["baseline_centre", "mean_common"] == 0.5
    assert set(s["n_common"]) == {2} and set(pairwise["n"]) == {2}
    assert s.loc["steady", "gap_centre"] == pytest.approx(0.5)    # (1 - 0 + 1 - 1) / 2, not over 5 images
    assert degenerate_share(2, 0, 3) == pytest.approx(0.6) and degenerate_share(0, 0, 0) != degenerate_share(0, 0, 0)
    # only baselines: every image is shared
    only, _ = summarise(_scores({"baseline_random": [0.0, None, 1.0]}), "d", "m")
    assert only["n_common"].iloc[0] == 3 and only["mean_common"].iloc[0] == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_images_property(seed):
    # the shared set is the images with no NaN among the ranked methods, whatever the baselines hold, and does
    # not depend on the order of the columns
    rng = np.random.default_rng(seed)
    wide = pd.DataFrame(rng.random((20, 4)), columns=["a", "b", "baseline_random", "c"],
                        index=[f"i{k}" for k in range(20)])
    wide = wide.mask(rng.random((20, 4)) < 0.2)
    got = shared_images(wide)
    want = [i for i in wide.index if wide.loc[i, ["a", "b", "c"]].notna().all()]
    assert list(got) == want and list(shared_images(wide[wide.columns[::-1]])) == want


def test_summarise_keeps_previous_intervals_of_methods_not_asked_for():
    vals = {"a": [0.0, 1.0, 1.0, 0.0, 1.0], "baseline_random": [0.0] * 5}
    full, _ = summarise(_scores(vals), "d", "m")
    prev = full.assign(ci_low=-1.0, ci_high=-2.0)
    part, _ = summarise(_scores(vals), "d", "m", methods={("baseline_random", "{}")}, previous=prev)
    part = part.set_index("method")
    assert part.loc["a", "ci_low"] == -1.0 and part.loc["a", "ci_high"] == -2.0     # kept
    assert part.loc["baseline_random", "ci_low"] == 0.0                               # recomputed
    assert part.loc["a", "gap_random"] == pytest.approx(0.6)                          # always recomputed


def test_substrate_of():
    assert substrate_of("deletion_auc", "{}") == "zero"
    assert substrate_of("deletion_auc", '{"substrate":"blur"}') == "blur"
    assert substrate_of("insertion_auc", "{}") == "blur"
    assert substrate_of("pointing_game", "{}") is None
