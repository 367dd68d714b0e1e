"""Insertion / deletion (RISE): hand-computed curves, AUC rule, batching, the blur kernel."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from engine.metrics import METRICS
from engine.metrics.faithfulness import rise_blur, rise_kernel, step_counts


class SigmoidProbe(nn.Module):
    """Two logits [w . x, 0]: the softmax probability of class 0 is sigmoid(w . x)."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float32))

    def forward(self, x):
        s = (x.flatten(1) * self.w.flatten()).sum(1)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def test_deletion_hand_computed():
    model = SigmoidProbe([[[math.log(3), 0.0], [0.0, 0.0]]])
    x = torch.ones(1, 1, 2, 2)
    maps = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])  # pixel a first
    auc, xs, ys = METRICS["deletion_auc"](maps, model=model, images=x, targets=torch.tensor([0]), n_steps=4,
                                          return_curves=True)
    np.testing.assert_allclose(xs, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(ys[0], [0.75, 0.5, 0.5, 0.5, 0.5], rtol=1e-6)
    assert auc[0] == pytest.approx((0.75 + 0.5) / 2 * 0.25 + 0.5 * 0.75)
    # the reverse order deletes the relevant pixel last
    late = METRICS["deletion_auc"](-maps, model=model, images=x, targets=torch.tensor([0]), n_steps=4)
    assert late[0] == pytest.approx(0.75 * 0.75 + (0.75 + 0.5) / 2 * 0.25)


def test_uneven_steps_and_trapezoid_on_fractions():
    np.testing.assert_array_equal(step_counts(4, 3), [0, 1, 3, 4])
    with pytest.raises(ValueError):
        step_counts(4, 0)


def test_insertion_of_constant_image_is_flat():
    model = SigmoidProbe(torch.full((1, 3, 3), 0.5))
    x = torch.zeros(1, 1, 3, 3)  # blur(0) = 0: start == finish
    auc = METRICS["insertion_auc"](torch.rand(1, 3, 3), model=model, images=x, targets=torch.tensor([0]), n_steps=5)
    assert auc[0] == pytest.approx(0.5)


def test_rise_kernel_like_gkern():
    k = rise_kernel(11, 5.0)
    assert k.shape == (11, 11) and float(k.sum()) == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(k, k.flip(0))
    torch.testing.assert_close(k, k.T)
    img = torch.zeros(1, 3, 21, 21)
    img[0, 1, 10, 10] = 1.0
    out = rise_blur(img)
    torch.testing.assert_close(out[0, 1, 5:16, 5:16], k)  # impulse response = kernel, per channel
    assert out[0, 0].abs().max() == 0


@pytest.mark.parametrize("name", ["insertion_auc", "deletion_auc"])
def test_batch_and_chunk_equivalence(name):
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).eval()
    x = torch.randn(3, 3, 8, 8, generator=g)
    maps = torch.rand(3, 8, 8, generator=g)
    t = torch.tensor([0, 1, 3])
    full = METRICS[name](maps, model=model, images=x, targets=t, n_steps=7, batch_size=64)
    tiny = METRICS[name](maps, model=model, images=x, targets=t, n_steps=7, batch_size=1)
    singles = np.concatenate([METRICS[name](maps[i:i + 1], model=model, images=x[i:i + 1], targets=t[i:i + 1],
                                            n_steps=7) for i in range(3)])
    np.testing.assert_allclose(full, tiny, rtol=1e-6)
    np.testing.assert_allclose(full, singles, rtol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        METRICS[name](maps * float("nan"), model=model, images=x, targets=t)
    with pytest.raises(ValueError, match="upsample"):
        METRICS[name](maps[:, :4], model=model, images=x, targets=t)
