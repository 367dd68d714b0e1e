"""Class sensitivity (Sixt et al. 2020 random-logit test): the other class, the similarities, the runner."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.metrics import METRICS
from engine.metrics.class_sensitivity import OTHER_CLASS, other_targets

CLASS_METRICS = {m: {} for m in OTHER_CLASS}


def test_second_most_likely_class_skips_the_explained_one():
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0], [5.0, 0.0, 1.0, 4.0]])
    np.testing.assert_array_equal(other_targets(logits, torch.tensor([1, 0]), ["a", "b"], "second"), [2, 3])
    # explained class not the predicted one: the second is the most likely of the others
    np.testing.assert_array_equal(other_targets(logits, torch.tensor([2, 3]), ["a", "b"], "second"), [1, 0])


def test_random_other_class_is_seeded_per_image_and_never_the_explained_one():
    logits = torch.zeros(6, 5)
    t = torch.tensor([0, 1, 2, 3, 4, 0])
    ids = [f"img{i}" for i in range(6)]
    a = other_targets(logits, t, ids, "random", seed=3)
    assert (a != t).all()
    np.testing.assert_array_equal(a, other_targets(logits, t, ids, "random", seed=3))
    # one image alone draws what it draws in its batch
    assert int(other_targets(logits[4:5], t[4:5], ids[4:5], "random", seed=3)[0]) == int(a[4])
    draws = {int(other_targets(logits[:1], t[:1], ["x"], "random", seed=s)[0]) for s in range(40)}
    assert draws == {1, 2, 3, 4}
    # two classes: the only other class
    np.testing.assert_array_equal(other_targets(torch.zeros(2, 2), torch.tensor([0, 1]), ["p", "q"], "random"), [1, 0])


def test_a_one_output_model_is_refused_in_one_line():
    with pytest.raises(ValueError, match="at least 2 outputs; this one has 1") as exc:
        other_targets(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long), ["a", "b", "c"], "second")
    assert "\n" not in str(exc.value)


def test_similarities_hand_computed():
    a = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    rev = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])
    for name in OTHER_CLASS:
        assert METRICS[name].kind == "class_sensitivity" and not METRICS[name].higher_is_better
        assert METRICS[name](a, 2 * a + 1)[0] == pytest.approx(1.0)  # same order / same scaled map
    assert METRICS["class_spearman_second"](a, rev)[0] == pytest.approx(-1.0)
    # SSIM with a 2 x 2 window over min-max scaled maps x = [0, 1/3, 2/3, 1], y = 1 - x:
    x = np.array([0, 1 / 3, 2 / 3, 1])
    y = 1 - x
    mx = my = 0.5
    sxx = syy = float((x * x).mean() - mx ** 2)
    sxy = float((x * y).mean() - mx * my)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    want = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    assert METRICS["class_ssim_random"](a, rev)[0] == pytest.approx(want)
    assert math.isnan(METRICS["class_spearman_random"](a, torch.ones(1, 2, 2))[0])  # constant: undefined


def test_batch_of_n_equals_n_batches_of_one():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(5, 6, 6, generator=g), torch.rand(5, 6, 6, generator=g)
    for name in OTHER_CLASS:
        whole = METRICS[name](a, b)
        np.testing.assert_allclose(whole, np.concatenate([METRICS[name](a[i:i + 1], b[i:i + 1]) for i in range(5)]))


@pytest.fixture(scope="module")
def scored(smear_spec):
    from engine.data import ImageDataset, load_records
    from engine.models import create_model
    from engine.runner.evaluate import evaluate_model
    records, classes = load_records(smear_spec)
    ds = ImageDataset(smear_spec, "test", records=[r for r in records if r.split == "test"][:6], classes=classes)
    assert len(ds) == 6
    torch.manual_seed(0)
    model, info = create_model("vit_demo", len(classes))
    methods = {"attention": {}, "rollout": {}, "chefer_gae": {}, "baseline_random": {}, "baseline_centre": {}}

    def run(batch_size):
        return evaluate_model(model.eval(), info, ds, run_id="r", dataset_id="d", model_id="m", methods=methods,
                              metrics={**CLASS_METRICS, "pointing_game": {}}, batch_size=batch_size, progress=False)
    return run(4), run(1)


def test_class_agnostic_methods_score_exactly_one(scored):
    res, _ = scored
    s = res.scores[res.scores.metric.isin(list(OTHER_CLASS))]
    assert (s.region == "none").all() and not s.empty
    agnostic = s[s.method.isin(["attention", "rollout", "baseline_random", "baseline_centre"])]
    assert len(agnostic) == 4 * 4 * 6
    assert (agnostic.value == 1.0).all()  # exactly: the paired tests must see no difference to a baseline
    chefer = s[s.method == "chefer_gae"].value.dropna()
    assert len(chefer) > 0 and (chefer < 1 - 1e-6).any()  # gradient-weighted: depends on the class
    assert not res.failures


def test_runner_batch_of_n_equals_n_batches_of_one(scored):
    big, one = scored
    key = ["method", "metric", "image_id"]
    a = big.scores[big.scores.metric.isin(list(OTHER_CLASS))].sort_values(key).value.to_numpy(dtype=float)
    b = one.scores[one.scores.metric.isin(list(OTHER_CLASS))].sort_values(key).value.to_numpy(dtype=float)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_one_class_dataset_refused_before_any_work(smear_spec):
    from engine.data import DatasetError
    from engine.runner.datasets import check_class_metrics
    from engine.runner.experiment import parse_experiment
    exp = parse_experiment({"name": "x", "datasets": [{"name": "d", "generate": "blood_smear"}],
                            "models": [{"name": "vit_demo"}], "methods": {"attention": {}},
                            "metrics": {"class_ssim_second": {}}})
    with pytest.raises(DatasetError, match="compare the maps of two classes") as exc:
        check_class_metrics(exp, smear_spec, ("cell",))
    assert "\n" not in str(exc.value)
    check_class_metrics(exp, smear_spec, ("a", "b"))  # two classes: fine
