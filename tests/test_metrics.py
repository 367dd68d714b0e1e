"""Localisation metrics: hand-computed values, edge cases and batch properties."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.metrics import METRICS, iou_topk


def T(x, dtype=torch.float32):
    return torch.tensor(x, dtype=dtype)


def test_registry_lists_skeleton_metrics():
    assert {"pointing_game", "iou_top5"} <= set(METRICS)


def test_pointing_game_hand_computed():
    m = T([[[0.0, 1.0], [0.5, 0.0]]] * 2)
    r = T([[[0, 1], [0, 0]], [[1, 0], [0, 0]]], torch.bool)
    np.testing.assert_array_equal(METRICS["pointing_game"](m, r), [1.0, 0.0])


def test_pointing_game_ties_and_empty_region():
    m = T([[[1.0, 1.0], [0.0, 0.0]], [[0.3, 0.3], [0.3, 0.3]], [[0.0, 1.0], [0.0, 0.0]]])
    r = T([[[1, 0], [0, 0]], [[1, 0], [0, 0]], [[0, 0], [0, 0]]], torch.bool)
    out = METRICS["pointing_game"](m, r)
    assert out[0] == 0.5  # two maximal pixels, one inside
    assert out[1] == 0.25  # constant map scores the region's area fraction (chance), not a hit
    assert np.isnan(out[2])  # empty region: not scored, never a hit
    assert out.dtype == np.float64


def test_iou_top5_hand_computed():
    m = torch.arange(100, dtype=torch.float32).reshape(1, 10, 10)
    r = torch.zeros(1, 10, 10, dtype=torch.bool)
    r[0, 9] = True  # the last row: values 90..99
    assert METRICS["iou_top5"](m, r)[0] == pytest.approx(5 / 10)  # top 5 = 95..99
    assert iou_topk(m, r, k=20)[0] == pytest.approx(10 / 20)  # top 20 = 80..99
    const = torch.ones(1, 10, 10)
    assert METRICS["iou_top5"](const, r)[0] == pytest.approx(10 / 100)  # ties: all pixels selected
    m7 = torch.arange(49, dtype=torch.float32).reshape(1, 7, 7)
    r7 = torch.zeros(1, 7, 7, dtype=torch.bool)
    r7[0, 6, 6] = True
    assert METRICS["iou_top5"](m7, r7)[0] == pytest.approx(1 / 3)  # ceil(0.05 * 49) = 3 pixels


def test_region_covering_whole_image():
    m = torch.rand(1, 10, 10)
    r = torch.ones(1, 10, 10, dtype=torch.bool)
    assert METRICS["pointing_game"](m, r)[0] == 1.0
    assert METRICS["iou_top5"](m, r)[0] == pytest.approx(5 / 100)


@pytest.mark.parametrize("name", ["pointing_game", "iou_top5"])
def test_nan_map_and_shape_mismatch_rejected(name):
    m = torch.rand(2, 4, 4)
    m[1, 0, 0] = float("nan")
    r = torch.ones(2, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"batch items \[1\]"):
        METRICS[name](m, r)
    with pytest.raises(ValueError, match="upsample maps first"):
        METRICS[name](torch.rand(2, 2, 2), r)


@pytest.mark.parametrize("name", ["pointing_game", "iou_top5"])
def test_batch_equivalence_and_monotone_invariance(name):
    g = torch.Generator().manual_seed(0)
    m = torch.rand(6, 20, 20, generator=g)
    r = torch.rand(6, 20, 20, generator=g) > 0.7
    batched = METRICS[name](m, r)
    singles = np.concatenate([METRICS[name](m[i:i + 1], r[i:i + 1]) for i in range(6)])
    np.testing.assert_array_equal(batched, singles)
    np.testing.assert_array_equal(METRICS[name](3.0 * m + 7.0, r), batched)  # rank-based: affine-invariant
    with pytest.raises(ValueError):
        iou_topk(m, r, k=0)


def test_pointing_game_tolerance():
    m = torch.zeros(1, 5, 5)
    m[0, 0, 0] = 1.0
    r = torch.zeros(1, 5, 5, dtype=torch.bool)
    r[0, 0, 3] = True  # 3 px from the maximum
    assert METRICS["pointing_game"](m, r, tolerance_px=2)[0] == 0.0
    assert METRICS["pointing_game"](m, r, tolerance_px=3)[0] == 1.0
    assert np.isnan(METRICS["pointing_game"](m, torch.zeros_like(r), tolerance_px=3)[0])


def test_energy_and_mass_hand_computed():
    m = T([[[2.0, -1.0], [1.0, 1.0]]])
    r = T([[[1, 1], [0, 0]]], torch.bool)
    assert METRICS["energy_pg"](m, r)[0] == pytest.approx(2 / 4)  # positive mass 4, 2 inside
    assert METRICS["mass_accuracy"](m, r)[0] == pytest.approx(3 / 5)  # |m| mass 5, 3 inside
    assert np.isnan(METRICS["energy_pg"](-m.abs(), r)[0])  # no positive mass: undefined


def test_rank_accuracy_hand_computed_with_ties():
    r = T([[[1, 0], [1, 0]]], torch.bool)
    assert METRICS["rank_accuracy"](T([[[4.0, 3.0], [2.0, 1.0]]]), r)[0] == pytest.approx(0.5)  # top 2 = {4, 3}
    r1 = T([[[1, 0], [0, 0]]], torch.bool)
    assert METRICS["rank_accuracy"](T([[[1.0, 1.0], [1.0, 0.0]]]), r1)[0] == pytest.approx(1 / 3)  # 3 tied, 1 slot


def test_auprc_hand_computed_with_ties():
    r = T([[[1, 0, 1, 0]]], torch.bool)
    # order .9(+) .8(-) .7(+) .1(-): AP = .5 * 1 + .5 * 2/3
    assert METRICS["auprc"](T([[[0.9, 0.8, 0.7, 0.1]]]), r)[0] == pytest.approx(0.5 + 1 / 3)
    r1 = T([[[1, 0, 0, 0]]], torch.bool)
    assert METRICS["auprc"](T([[[1.0, 1.0, 0.0, 0.0]]]), r1)[0] == pytest.approx(0.5)  # tied group: P = 1/2
    assert METRICS["auprc"](torch.ones(1, 1, 4), r1)[0] == pytest.approx(0.25)  # constant map: prevalence


@pytest.mark.parametrize("name", ["energy_pg", "mass_accuracy", "rank_accuracy", "auprc", "iou_topk"])
def test_new_metrics_batch_equivalence_and_range(name):
    g = torch.Generator().manual_seed(1)
    m = torch.rand(5, 12, 12, generator=g)
    r = torch.rand(5, 12, 12, generator=g) > 0.6
    r[2] = False
    out = METRICS[name](m, r)
    singles = np.concatenate([METRICS[name](m[i:i + 1], r[i:i + 1]) for i in range(5)])
    np.testing.assert_array_equal(out, singles)
    assert np.isnan(out[2]) and np.all((out[[0, 1, 3, 4]] >= 0) & (out[[0, 1, 3, 4]] <= 1))
    full = torch.ones(1, 12, 12, dtype=torch.bool)
    assert METRICS[name](m[:1], full)[0] == pytest.approx(1.0 if name != "iou_topk" else 8 / 144)
