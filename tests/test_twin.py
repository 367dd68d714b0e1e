"""Gap on the twin (engine.dashboard.twin): the random-weights twin's gap beside the trained model's."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.dashboard.twin import TWIN_GAINS, gains_as_much, twin_cell, twin_warning, with_twin


def _board(higher=True):
    # issue 23's case: IG's insertion gap to the centre map +0.085 [0.06, 0.11] trained, +0.070 on the twin
    rows = [("trained", "integrated_gradients", 0.085, 0.06, 0.11, 0.20, 0.15, 0.25, "twin"),
            ("trained", "attention", 0.010, -0.02, 0.04, 0.30, 0.25, 0.35, "twin"),
            ("trained", "baseline_centre", None, None, None, 0.05, 0.0, 0.1, "twin"),
            ("twin", "integrated_gradients", 0.070, 0.05, 0.09, 0.02, 0.0, 0.04, None),
            ("twin", "attention", 0.020, 0.0, 0.04, 0.31, 0.2, 0.4, None)]
    df = pd.DataFrame(rows, columns=["model_id", "label", "gap_centre", "gap_centre_ci_low", "gap_centre_ci_high",
                                     "gap_random", "gap_random_ci_low", "gap_random_ci_high", "twin_model_id"])
    return df.assign(baseline=df.label.str.startswith("baseline_"), higher_is_better=higher)


def test_gains_as_much_by_hand():
    assert gains_as_much(0.085, 0.06, 0.11, 0.070, True)          # inside the CI
    assert gains_as_much(0.085, 0.06, 0.11, 0.5, True)            # beyond it on the better side
    assert not gains_as_much(0.085, 0.06, 0.11, 0.05, True)       # below the CI
    assert not gains_as_much(-0.1, -0.2, 0.0, -0.1, True)         # no gain to match
    assert not gains_as_much(0.01, -0.02, 0.04, 0.02, True)       # a CI holding 0 is no gain either
    assert gains_as_much(-0.1, -0.15, -0.05, -0.06, False)        # lower is better: inside
    assert not gains_as_much(-0.1, -0.15, -0.05, -0.01, False)
    assert not gains_as_much(0.1, None, None, 0.1, True)          # no CI stored: no flag


def test_with_twin_by_hand():
    b = with_twin(_board()).set_index(["model_id", "label"])
    ig = b.loc[("trained", "integrated_gradients")]
    assert ig.twin_gap_centre == 0.070 and ig.twin_gap_random == 0.02
    assert ig.twin_gains == "centre"                                 # random: 0.02 < 0.15
    assert twin_warning(ig.to_dict()) == f"{TWIN_GAINS} (vs the centre map)"
    att = b.loc[("trained", "attention")]
    assert att.twin_gains == "random"          # centre: its CI [-0.02, 0.04] holds 0, no gain to match
    assert np.isnan(b.loc[("twin", "attention")].twin_gap_centre)    # a twin has no twin
    assert b.loc[("trained", "baseline_centre")].twin_gains == ""    # baselines never flagged
    assert twin_cell(0.085, 0.070) == "+0.085 / twin +0.070" and twin_cell(0.085, float("nan")) == "+0.085"
    assert twin_cell(None, 0.1) == "–"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_with_twin_property(seed):
    # the order of the rows does not change any row's result; a board without twins flags nothing
    b = _board()
    perm = b.sample(frac=1, random_state=seed)
    key = ["model_id", "label"]
    a = with_twin(b).set_index(key).sort_index()
    p = with_twin(perm).set_index(key).sort_index()
    pd.testing.assert_frame_equal(a, p)
    assert (with_twin(b.assign(twin_model_id=None)).twin_gains == "").all()
