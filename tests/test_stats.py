"""Statistics: Holm, Wilcoxon pairs, bootstrap CIs, and the summaries written at ingest."""
from __future__ import annotations

import numpy as np
import pytest

from engine.dashboard import queries
from engine.metrics.stats import bootstrap_ci, holm, wilcoxon_pair


def test_holm_hand_computed():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    out = holm([0.5, np.nan, 0.01])
    assert np.isnan(out[1]) and out[2] == pytest.approx(0.02) and out[0] == pytest.approx(0.5)


def test_wilcoxon_pairs():
    n, diff, p = wilcoxon_pair([2, 3, 4, 5, 6], [1, 1, 1, 1, 1])
    assert (n, diff) == (5, 3.0) and p == pytest.approx(2 / 32)  # exact: all 5 ranks positive
    assert wilcoxon_pair([1, 2, np.nan], [1, 2, 3]) == (2, 0.0, 1.0)  # NaN pair dropped, zero differences
    assert wilcoxon_pair([np.nan], [1])[0] == 0


def test_bootstrap_ci():
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    assert all(np.isnan(bootstrap_ci([1.0])))
    rng = np.random.default_rng(0)
    v = rng.random(200)
    lo, hi = bootstrap_ci(v)
    assert lo < v.mean() < hi and hi - lo < 0.2
    assert bootstrap_ci(v) == (lo, hi)  # seeded
    lo01, hi01 = bootstrap_ci((rng.random(50) > 0.5).astype(float))  # pointing-game-like 0/1 data
    assert 0 <= lo01 < hi01 <= 1


def test_summaries_in_fixture_db(fixture_db):
    opts = queries.score_options(fixture_db)
    ds = opts.dataset_id.iloc[0]
    board = queries.leaderboard(fixture_db, ds, "pointing_game", "mask")
    assert {"ci_low", "ci_high", "n"} <= set(board.columns)
    ok = board.dropna(subset=["ci_low"])
    assert ((ok.ci_low <= ok["mean"] + 1e-12) & (ok["mean"] <= ok.ci_high + 1e-12)).all()
    pw = queries.pairwise(fixture_db, ds, "pointing_game", "mask")
    assert len(pw) == 2  # one pair of methods per model
    assert ((pw.p_holm >= pw.p_value) | pw.p_value.isna()).all()


def test_agreement_queries(fixture_db):
    ds = queries.score_options(fixture_db).dataset_id.iloc[0]
    model = queries.models(fixture_db).model_id.iloc[0]
    agree = queries.metric_agreement(fixture_db, ds, model, "mask")
    assert {"pointing_game", "iou_top5", "insertion_auc", "deletion_auc"} <= set(agree.columns)
    ranks, rho = queries.region_agreement(fixture_db, ds, model, "pointing_game")
    assert set(ranks.index) == {"attention", "chefer_gae"}
    assert rho != rho  # fewer than 3 methods: undefined, not a fake number


def test_float_noise_is_a_tie_not_a_difference():
    # two rules that agree up to rounding (here 1e-16 apart on 20 images) must not read as one beating the other
    a = np.linspace(0.1, 0.9, 20)
    b = a + np.where(np.arange(20) % 3 == 0, 0.0, 1e-16 * (1 + np.arange(20)))
    assert wilcoxon_pair(a, b) == (20, 0.0, 1.0)
    # a real difference on top of the noise is still seen: every image higher by a distinct amount, so all 20
    # signed ranks are positive and the exact two-sided p is 2 / 2**20
    up = 0.01 + 0.001 * np.arange(20)
    n, diff, p = wilcoxon_pair(b + up, a)
    assert n == 20 and abs(diff - up.mean()) < 1e-12 and p == pytest.approx(2 / 2**20)
    # invariance: the noise changes nothing next to a real difference (the same test as without it)
    c = a.copy()
    c[5] += 0.2
    c[9] -= 0.05
    (n1, d1, p1), (n2, d2, p2) = wilcoxon_pair(c, b), wilcoxon_pair(c, a)
    assert (n1, p1) == (n2, p2) and d1 == pytest.approx(d2, abs=1e-15)
