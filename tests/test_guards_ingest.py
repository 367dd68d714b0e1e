"""The guards as the runner stores them: substrates, degenerate maps, region stats, quality, gaps."""
from __future__ import annotations

import math

import duckdb
import numpy as np
import pytest
import torch
from test_faithfulness import SigmoidProbe

from engine.metrics import METRICS
from engine.metrics.faithfulness import rise_kernel


def test_deletion_on_the_blurred_substrate_hand_computed():
    model = SigmoidProbe([[[math.log(3), 0.0], [0.0, 0.0]]])
    x = torch.ones(1, 1, 2, 2)
    maps = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])  # pixel a (top left) first
    k = rise_kernel().numpy()
    b_a = float(k[5, 5] + k[5, 6] + k[6, 5] + k[6, 6])  # blurred value of pixel a: zero padding
    p_a = 1 / (1 + math.exp(-math.log(3) * b_a))
    auc, xs, ys = METRICS["deletion_auc"](maps, model=model, images=x, targets=torch.tensor([0]), n_steps=4,
                                          return_curves=True, substrate="blur")
    np.testing.assert_allclose(ys[0], [0.75, p_a, p_a, p_a, p_a], rtol=1e-5)
    zero = METRICS["deletion_auc"](maps, model=model, images=x, targets=torch.tensor([0]), n_steps=4)
    assert auc[0] > zero[0]  # the blurred image keeps some of pixel a
    ins = METRICS["insertion_auc"](maps, model=model, images=x, targets=torch.tensor([0]), n_steps=4,
                                   return_curves=True, substrate="zero")[2]
    np.testing.assert_allclose(ins[0], [0.5, 0.75, 0.75, 0.75, 0.75], rtol=1e-6)
    with pytest.raises(ValueError, match="substrate"):
        METRICS["deletion_auc"](maps, model=model, images=x, targets=torch.tensor([0]), substrate="black")


def test_experiment_rejects_an_unknown_substrate():
    from engine.runner.experiment import ExperimentError, parse_experiment
    with pytest.raises(ExperimentError, match="substrate"):
        parse_experiment({"name": "x", "datasets": [{"name": "d", "generate": "blood_smear"}],
                          "models": [{"name": "vit_demo"}], "methods": {"attention": {}},
                          "metrics": {"deletion_auc": {"substrate": "black"}}})


def _q(db, sql, params=()):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def test_a_constant_map_is_counted_not_scored(guards_db):
    deg = _q(guards_db, "SELECT method_params, kind, count(*) FROM degenerate_maps WHERE model_id NOT IN "
                        "('oracle', 'shuffled') GROUP BY ALL")
    assert deg == [('{"sigma":1000000.0}', "constant", 12)]
    vals = _q(guards_db, "SELECT count(*), count(value) FROM scores WHERE method_params = '{\"sigma\":1000000.0}' "
                         "AND model_id <> 'oracle'")
    assert vals == [(12 * (2 * 2 + 1), 0)]  # a row per image, metric and region (mask, box; none): all NULL
    s = _q(guards_db, "SELECT n, n_undefined, n_degenerate FROM summary WHERE method_params = "
                      "'{\"sigma\":1000000.0}' AND model_id <> 'oracle'")
    assert s and all(r == (0, 0, 12) for r in s)
    assert _q(guards_db, "SELECT count(*) FROM curves WHERE method_params = '{\"sigma\":1000000.0}'") == [(0,)]
    ok = _q(guards_db, "SELECT max(n_degenerate) FROM summary WHERE method = 'baseline_random'")
    assert ok == [(0,)]


def test_region_stats_and_centre_share(guards_db):
    rows = _q(guards_db, "SELECT region, count(*), avg(area), avg(covers_centre::INT) FROM region_stats GROUP BY ALL")
    assert rows and all(n == 12 and 0 < area < 1 and 0 <= share <= 1 for _, n, area, share in rows)


def test_summary_rows_carry_substrate_and_gaps(guards_db):
    sub = dict(_q(guards_db, "SELECT DISTINCT metric_params, substrate FROM summary WHERE metric = 'deletion_auc'"))
    assert sub == {'{"n_steps":4}': "zero", '{"n_steps":4,"substrate":"blur"}': "blur"}
    assert _q(guards_db, "SELECT count(*) FROM summary WHERE metric = 'pointing_game' AND substrate IS NOT NULL") == \
        [(0,)]
    gaps = _q(guards_db, "SELECT method, gap_random, p_random, gap_centre, p_centre FROM summary WHERE "
                         "metric = 'pointing_game' AND region = 'mask' AND method = 'attention' AND model_id IN "
                         "(SELECT model_id FROM degenerate_maps)")
    assert len(gaps) == 2 and all(v is not None for row in gaps for v in row[1:])  # first model and oracle
    other = _q(guards_db, "SELECT gap_random, p_centre FROM summary WHERE model_id LIKE '%random-b%'")
    assert other and all(r == (None, None) for r in other)  # no baseline run for the second model
    assert _q(guards_db, "SELECT baseline FROM methods WHERE method = 'integrated_gradients'") == [("zero",)]


def test_model_quality_rows(guards_db):
    q = {r[0]: r[1:] for r in _q(guards_db, "SELECT model_id, near_chance, twin_model_id, n, balanced_accuracy "
                                            "FROM model_quality")}
    assert set(q) == {r[0] for r in _q(guards_db, "SELECT model_id FROM models")}
    assert q["oracle"][0] is False and q["oracle"][3] == 1.0 and q["oracle"][2] == 12
    assert q["oracle"][1] is not None  # its random-weights twin: the first fixture model
    assert q["shuffled"][0] is True and q["shuffled"][1] == q["oracle"][1]  # trained on shuffled labels: flagged
