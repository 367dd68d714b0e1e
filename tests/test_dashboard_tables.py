"""The tables behind the Leaderboard and Compare pages (engine.dashboard.leaderboard / .compare): pure
functions, hand-computed on tiny inputs, plus properties of the rank on random ones."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.dashboard import leaderboard as lb
from engine.dashboard.compare import depth_rows, strategy_means, strategy_models


def board_rows(rows, higher=True) -> pd.DataFrame:
    """Leaderboard rows as queries.leaderboard returns them, from (model, strategy, method, mean, n)."""
    df = pd.DataFrame(rows, columns=["model_id", "strategy", "method", "mean", "n"])
    return df.assign(model=df.model_id, init="scratch", arch=None, method_params="{}", ci_low=df["mean"] - 0.1,
                     ci_high=df["mean"] + 0.1, n_undefined=0, higher_is_better=higher)


BOARD = board_rows([
    ("m1", "supervised", "attention", 0.8, 10), ("m1", "supervised", "gradcam", 0.8, 10),
    ("m1", "supervised", "chefer_gae", 0.6, 10), ("m1", "supervised", "lrp", 0.5, 10),
    ("m1", "supervised", "baseline_random", 0.3, 10),
    ("m2", "dino", "attention", 0.5, 20), ("m2", "dino", "chefer_gae", 0.7, 20),
    ("m2", "dino", "baseline_random", 0.4, 20),
])
PAIRS = pd.DataFrame([("m1", "attention", "chefer_gae", 0.004), ("m1", "chefer_gae", "gradcam", 0.5),
                      ("m2", "attention", "chefer_gae", 0.2)], columns=["model_id", "method_a", "method_b", "p_holm"])


def test_by_model_hand_computed():
    t = lb.leaderboard_table(BOARD, PAIRS, "model").set_index(["model_id", "method"])
    assert t.loc[("m1", "attention"), "rank"] == 1 and t.loc[("m1", "gradcam"), "rank"] == 1  # a tie shares 1
    assert t.loc[("m1", "chefer_gae"), "rank"] == 3 and t.loc[("m1", "lrp"), "rank"] == 4
    assert np.isnan(t.loc[("m1", "baseline_random"), "rank"])  # baselines not ranked
    assert t.loc[("m2", "chefer_gae"), "rank"] == 1 and t.loc[("m2", "attention"), "rank"] == 2
    p = t["p vs best (Holm)"]
    assert p[("m1", "attention")] == "best" and p[("m1", "gradcam")] == "best"
    assert p[("m1", "chefer_gae")] == "0.004" and t.loc[("m1", "chefer_gae"), "signif"] == "**"
    assert p[("m1", "lrp")] == "n/a" and t.loc[("m1", "lrp"), "signif"] == ""  # no stored test: not "best"
    assert p[("m2", "attention")] == "0.2" and t.loc[("m2", "attention"), "signif"] == "n.s."  # pair stored b, a
    assert p[("m1", "baseline_random")] == "" and t.loc[("m1", "baseline_random"), "signif"] == ""
    assert t.loc[("m1", "attention"), "vs random"] == pytest.approx(0.5)
    assert t.loc[("m2", "chefer_gae"), "vs random"] == pytest.approx(0.3)
    assert t.loc[("m1", "baseline_random"), "vs random"] == pytest.approx(0.0)
    # sorted by model, baselines last, then rank
    assert list(t.loc["m1"].index) == ["attention", "gradcam", "chefer_gae", "lrp", "baseline_random"]
    # key columns first (issue 16: rank, score, p and the flags were off-screen at 1,400 px)
    assert list(t.columns) == ["rank", "mean", "ci_low", "ci_high", "p vs best (Holm)", "signif", "vs random map",
                               "vs centre map", "warning", "n", "n ranked", "mean ranked", "n degenerate",
                               "n_undefined", "vs random", "strategy", "arch", "baseline"]


def test_rank_uses_the_mean_over_the_shared_images():
    # 'sparse' has the best own mean (0.9 over 4 images; 6 of its 10 maps degenerate) but over the 4 shared
    # images 'steady' is better (0.95 vs 0.9): steady ranks first, sparse is marked, the cells say n differs
    b = board_rows([("m1", "s", "sparse", 0.9, 4), ("m1", "s", "steady", 0.7, 10),
                    ("m1", "s", "baseline_random", 0.2, 10)])
    b = b.assign(n_common=4, mean_common=[0.9, 0.95, 0.25], n_degenerate=[6, 0, 0])
    t = lb.leaderboard_table(b, PAIRS.iloc[:0], "model").set_index(["model_id", "method"])
    assert t.loc[("m1", "steady"), "rank"] == 1 and t.loc[("m1", "sparse"), "rank"] == 2
    assert t.loc[("m1", "steady"), "mean ranked"] == 0.95 and t.loc[("m1", "steady"), "n ranked"] == 4
    assert "degenerate maps on 60% of images (> 10%)" in t.loc[("m1", "sparse"), "warning"]
    assert t.loc[("m1", "steady"), "warning"] == ""
    # a version-7 row (no shared mean stored) ranks by its own mean
    old = b.assign(n_common=None, mean_common=None)
    t = lb.leaderboard_table(old, PAIRS.iloc[:0], "model").set_index(["model_id", "method"])
    assert t.loc[("m1", "sparse"), "rank"] == 1


def test_lower_is_better_ranks_the_lowest_first():
    t = lb.leaderboard_table(BOARD.assign(higher_is_better=False), PAIRS, "model").set_index(["model_id", "method"])
    assert t.loc[("m1", "lrp"), "rank"] == 1 and t.loc[("m1", "attention"), "rank"] == 3
    assert t.loc[("m2", "attention"), "rank"] == 1
    assert t["p vs best (Holm)"][("m1", "lrp")] == "best"
    assert t["p vs best (Holm)"][("m1", "chefer_gae")] == "n/a"  # (lrp, chefer_gae) not stored


def test_by_strategy_hand_computed():
    two = pd.concat([BOARD, board_rows([("m3", "dino", "attention", 0.9, 5), ("m3", "dino", "chefer_gae", 0.3, 5),
                                        ("m3", "dino", "baseline_random", 0.2, 5)])], ignore_index=True)
    t = lb.leaderboard_table(two, PAIRS, "strategy").set_index(["strategy", "method"])
    att = t.loc[("dino", "attention")]
    assert att["mean"] == pytest.approx(0.7) and att["min_model_mean"] == 0.5 and att["max_model_mean"] == 0.9
    assert att["models"] == 2 and att["n"] == 25
    assert att["vs random"] == pytest.approx(0.7 - 0.3)
    assert att["rank"] == 1 and t.loc[("dino", "chefer_gae"), "rank"] == 2  # (0.7 + 0.3) / 2 = 0.5
    assert np.isnan(t.loc[("dino", "baseline_random"), "rank"])
    assert "p vs best (Holm)" not in t.columns  # paired tests are per model


def test_group_by_architecture_falls_back_to_the_model_name():
    t = lb.leaderboard_table(BOARD, PAIRS, "arch")
    assert set(t["arch"]) == {"m1", "m2"}  # arch missing: the model's name


def test_unknown_group_and_empty_board():
    with pytest.raises(ValueError, match="group 'x'"):
        lb.leaderboard_table(BOARD, PAIRS, "x")
    empty = lb.leaderboard_table(BOARD.iloc[:0], PAIRS.iloc[:0], "model")
    assert empty.empty and list(empty.columns)[:4] == ["model_id", "rank", "method", "mean"]
    assert lb.higher_is_better(BOARD.iloc[:0])


def test_stars_and_p_text():
    assert [lb.stars(p) for p in (None, float("nan"), 0.0005, 0.005, 0.03, 0.05, 0.5)] == [
        "", "", "***", "**", "*", "n.s.", "n.s."]
    assert [lb.p_text(p, b) for p, b in ((None, False), (float("nan"), False), (0.01234, False), (0.3, True))] == [
        "best", "n/a", "0.012", ""]


@pytest.mark.parametrize("seed", range(20))
def test_rank_properties(seed):
    """On random boards: ranks are 1..k within each model, the best mean has rank 1, a better mean never has a
    worse rank, baselines carry no rank and removing them changes no other rank."""
    rng = np.random.default_rng(seed)
    rows = [(f"m{m}", "s", f"method{k}" if k % 4 else f"baseline_{k}", float(np.round(rng.random(), 1)), 10)
            for m in range(3) for k in range(int(rng.integers(2, 9)))]
    higher = bool(seed % 2)
    board = lb.prepare(board_rows(rows, higher))
    r = lb.rank_within(board, "model_id", higher)
    assert r[board.baseline].isna().all() and r[~board.baseline].notna().all()
    real = board[~board.baseline].assign(rank=r)
    for _, g in real.groupby("model_id"):
        best = g["mean"].max() if higher else g["mean"].min()
        assert set(g.loc[g["mean"] == best, "rank"]) == {1}
        assert g["rank"].max() <= len(g)
        better = g["mean"].values[:, None] > g["mean"].values[None, :] if higher else \
            g["mean"].values[:, None] < g["mean"].values[None, :]
        assert (g["rank"].values[:, None] <= g["rank"].values[None, :])[better].all()
    alone = lb.rank_within(board[~board.baseline], "model_id", higher)
    assert alone.equals(r[~board.baseline])


def test_compare_strategy_tables():
    df = pd.DataFrame({
        "strategy": ["sup", "sup", "sup", "dino"], "model_id": ["a", "a", "b", "c"],
        "method": ["attention", "chefer", "attention", "attention"], "mean": [0.2, 0.5, 0.6, 0.9], "n": [3, 3, 4, 5],
        "test_accuracy": [0.9, 0.9, 0.8, 0.7], "test_balanced_accuracy": [0.85, 0.85, 0.75, 0.7],
        "val_accuracy": [0.8, 0.8, 0.8, 0.6], "pretrain_steps": [None, None, None, "100"],
        "pretrain_final_loss": [None, None, None, 1.5], "pretrain_collapse": [None, None, None, "none"]})
    means = strategy_means(df).set_index(["strategy", "method"])
    sup = means.loc[("sup", "attention")]
    assert (sup["mean"], sup["lo"], sup["hi"], sup["models"], sup["n"]) == (pytest.approx(0.4), 0.2, 0.6, 2, 7)
    assert means.loc[("dino", "attention"), "n"] == 5 and len(means) == 3
    models = strategy_models(df).set_index("model_id")
    assert list(models.index) == ["c", "a", "b"]  # grouped by strategy, then model
    assert models.loc["a", "test_accuracy"] == 0.9 and models.loc["c", "pretrain_steps"] == "100"


def test_depth_rows_prefers_localisation_metrics():
    df = pd.DataFrame({"metric": ["pointing_game", "insertion_auc", "iou_top5"], "layer": [0, 0, 1]})
    assert list(depth_rows(df).metric) == ["pointing_game", "iou_top5"]
    only = df[df.metric == "insertion_auc"]
    assert list(depth_rows(only).metric) == ["insertion_auc"]


def test_the_twins_gap_is_shown_beside_the_models_and_flagged():
    # issue 23: IG's gap to the centre map +0.085 [0.06, 0.11] trained, +0.070 on its random-weights twin
    b = board_rows([("trained", "s", "integrated_gradients", 0.5, 10), ("trained", "s", "baseline_centre", 0.4, 10),
                    ("twin", "s", "integrated_gradients", 0.45, 10), ("twin", "s", "baseline_centre", 0.38, 10)])
    b = b.assign(gap_centre=[0.085, None, 0.070, None], p_centre=[1e-6, None, 1e-5, None],
                 gap_centre_ci_low=[0.06, None, 0.05, None], gap_centre_ci_high=[0.11, None, 0.09, None],
                 twin_model_id=["twin", "twin", None, None])
    t = lb.leaderboard_table(b, PAIRS.iloc[:0], "model").set_index(["model_id", "method"])
    ig = t.loc[("trained", "integrated_gradients")]
    assert ig["vs centre map"] == "+0.085 (p 1e-06, beats) / twin +0.070"
    assert "the random-weights twin gains as much (vs the centre map)" in ig["warning"]
    assert "twin" not in t.loc[("twin", "integrated_gradients"), "vs centre map"]
    # a twin well below the trained model's CI is not flagged
    b2 = b.assign(gap_centre=[0.085, None, 0.01, None])
    t2 = lb.leaderboard_table(b2, PAIRS.iloc[:0], "model").set_index(["model_id", "method"])
    assert "twin gains" not in t2.loc[("trained", "integrated_gradients"), "warning"]
