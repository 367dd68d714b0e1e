"""ROAD (Rong et al. 2022): noisy linear imputation, the removal rule, curves and AUCs, batching, refusals."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from engine.metrics import METRICS
from engine.metrics.road import check_percentiles, curve_forwards, impute, removed_pixels, road_auc


def test_centre_pixel_is_the_weighted_mean_of_its_eight_neighbours():
    img = np.array([[[12, 6, 12], [6, 0, 6], [12, 6, 12]]], dtype=np.float32)  # edges 6, corners 12
    removed = np.zeros((3, 3), bool)
    removed[1, 1] = True
    out = impute(img, removed)
    assert out[0, 1, 1] == pytest.approx(4 * 6 / 6 + 4 * 12 / 12)  # = 8
    np.testing.assert_array_equal(np.delete(out.ravel(), 4), np.delete(img.ravel(), 4))  # kept pixels unchanged


def test_corner_pixel_uses_only_the_neighbours_inside_the_image():
    img = np.array([[[0, 1], [2, 3]]], dtype=np.float32)
    removed = np.array([[True, False], [False, False]])
    # (1/6 * 1 + 1/6 * 2 + 1/12 * 3) / (1/6 + 1/6 + 1/12) = (2 + 4 + 3) / 5
    assert impute(img, removed)[0, 0, 0] == pytest.approx(1.8)


def test_adjacent_removed_pixels_are_solved_jointly():
    img = np.array([[[1, 9, 9, 4]]], dtype=np.float32)  # one row: only left / right neighbours
    out = impute(img, np.array([[False, True, True, False]]))
    np.testing.assert_allclose(out[0, 0], [1, 2, 3, 4], rtol=1e-6)  # 2 x1 = x0 + x2, 2 x2 = x1 + x3


def test_noise_is_seeded_and_only_on_removed_pixels():
    img = np.random.default_rng(0).normal(size=(3, 8, 8)).astype(np.float32)
    removed = np.zeros((8, 8), bool)
    removed[2:5, 3:6] = True
    a, b, c = impute(img, removed, 0.5, seed=1), impute(img, removed, 0.5, seed=1), impute(img, removed, 0.5, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(a[:, ~removed], img[:, ~removed])
    noise = (a - impute(img, removed))[:, removed]
    np.testing.assert_allclose(noise, 0.5 * torch.randn((3, 9), generator=torch.Generator().manual_seed(1)).numpy(),
                               atol=1e-6)


def test_removal_rule_by_percentile():
    m = np.arange(10, dtype=float).reshape(2, 5)
    # MoRF 30 %: m >= percentile(m, 70) = 6.3 -> 7, 8, 9; LeRF 30 %: m <= percentile(m, 30) = 2.7 -> 0, 1, 2
    assert sorted(m[removed_pixels(m, 30, True)]) == [7, 8, 9]
    assert sorted(m[removed_pixels(m, 30, False)]) == [0, 1, 2]


class PixelOneProbe(nn.Module):
    """Logits [x[..., 1] - 2, 0]: the softmax probability of class 0 is sigmoid(pixel 1 - 2)."""

    def forward(self, x):
        s = x[:, 0, 0, 1] - 2
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def _sig(v):
    return 1 / (1 + math.exp(-v))


def test_morf_and_lerf_curves_hand_computed():
    x = torch.tensor([[[[1.0, 5.0, 3.0, 4.0]]]])
    maps = torch.tensor([[[0.1, 0.9, 0.5, 0.3]]])
    kw = dict(model=PixelOneProbe(), images=x, targets=torch.tensor([0]), percentiles=[25, 50], noise=0.0,
              return_curves=True)
    auc, xs, ys = METRICS["road_morf_auc"](maps, **kw)
    # 25 %: pixel 1 (0.9) removed -> (1 + 3) / 2 = 2; 50 %: pixels 1, 2 removed -> 2, 3 (linear): pixel 1 = 2
    np.testing.assert_allclose(xs, [0, 0.25, 0.5])
    np.testing.assert_allclose(ys[0], [_sig(3), 0.5, 0.5], rtol=1e-6)
    assert auc[0] == pytest.approx(((_sig(3) + 0.5) / 2 * 0.25 + 0.5 * 0.25) / 0.5, rel=1e-6)
    auc_l, _, ys_l = METRICS["road_lerf_auc"](maps, **kw)
    # LeRF 25 %: pixel 0 (0.1) removed, pixel 1 kept; 50 %: pixels 0, 3 removed: pixel 1 still kept
    np.testing.assert_allclose(ys_l[0], [_sig(3)] * 3, rtol=1e-6)
    assert auc_l[0] == pytest.approx(_sig(3), rel=1e-6)
    assert METRICS["road_morf_auc"].higher_is_better is False and METRICS["road_lerf_auc"].higher_is_better


def test_auc_is_the_mean_probability_along_the_curve():
    np.testing.assert_allclose(road_auc(np.array([0, 0.1, 0.9]), np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])),
                               [1.0, (0.05 + 0.8) / 0.9])


def test_batch_of_n_equals_n_batches_of_one_with_noise():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(16, 3)).eval()
    x = torch.randn(5, 3, 12, 12)
    maps = torch.rand(5, 12, 12)
    t = torch.tensor([0, 1, 2, 1, 0])
    for name in ("road_morf_auc", "road_lerf_auc"):
        whole = METRICS[name](maps, model=model, images=x, targets=t, batch_size=7)
        ones = np.concatenate([METRICS[name](maps[i:i + 1], model=model, images=x[i:i + 1], targets=t[i:i + 1])
                               for i in range(5)])
        np.testing.assert_allclose(whole, ones, rtol=1e-5)
        assert np.all((whole >= 0) & (whole <= 1))
        # invariance: the rule uses the map's order only
        np.testing.assert_allclose(METRICS[name](3 * maps + 1, model=model, images=x, targets=t), whole, rtol=1e-5)


def test_a_map_that_removes_every_pixel_has_no_auc():
    x = torch.tensor([[[[1.0, 5.0, 3.0, 4.0]]]]).repeat(2, 1, 1, 1)
    maps = torch.tensor([[[1.0, 1.0, 1.0, 1.0]], [[0.1, 0.9, 0.5, 0.3]]])  # constant: every pixel >= the threshold
    auc = METRICS["road_morf_auc"](maps, model=PixelOneProbe(), images=x, targets=torch.tensor([0, 0]),
                                   percentiles=[25], noise=0.0)
    assert math.isnan(auc[0]) and not math.isnan(auc[1])


@pytest.mark.parametrize("bad, why", [([0, 50], "outside"), ([50, 100], "outside"), ([50, 20], "increasing"),
                                      ([20, 20], "increasing"), ([], "at least one")])
def test_bad_percentiles_are_refused(bad, why):
    with pytest.raises(ValueError, match=why):
        check_percentiles(bad)
    from engine.runner.experiment import ExperimentError, parse_experiment
    with pytest.raises(ExperimentError, match=why):
        parse_experiment({"name": "x", "datasets": [{"name": "d", "generate": "blood_smear"}],
                          "models": [{"name": "vit_demo"}], "methods": {"attention": {}},
                          "metrics": {"road_morf_auc": {"percentiles": bad}}})


def test_bad_percentiles_refused_in_one_line_before_any_work(tmp_path):
    exp = tmp_path / "road.toml"
    exp.write_text('name = "x"\n[[datasets]]\nname = "d"\ngenerate = "blood_smear"\nroot = "gen"\n'
                   'models = ["vit_demo"]\n[[models]]\nname = "vit_demo"\n[methods]\nattention = {}\n'
                   '[metrics]\nroad_lerf_auc = { percentiles = [10, 150] }\n')
    res = subprocess.run([sys.executable, "-m", "engine", "run", str(exp), "--db", str(tmp_path / "r.duckdb")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "150" in lines[0] and "road.toml" in lines[0], res.stderr
    assert not (tmp_path / "gen").exists() and not (tmp_path / "r.duckdb").exists()


def test_curve_forwards():
    assert curve_forwards("road_morf_auc", {}) == 10
    assert curve_forwards("road_lerf_auc", {"percentiles": [20, 80]}) == 3
    assert curve_forwards("insertion_auc", {"n_steps": 12}) == 13
