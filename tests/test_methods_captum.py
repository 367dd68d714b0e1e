"""Captum methods: hand-computed values on a linear model; Grad-CAM parity with Captum LayerGradCam."""
from __future__ import annotations

import pytest
import torch
from conftest import tiny_vit
from torch import nn

from engine.explain import METHODS, explain


class Linear(nn.Module):
    """logit_k = sum_{c,i,j} W[k,c,i,j] x[c,i,j]: every attribution has a closed form."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return torch.einsum("bchw,kchw->bk", x, self.w)


def setup():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 2, 4, 4, generator=g)
    x = torch.randn(2, 2, 4, 4, generator=g)
    return Linear(w).eval(), w, x, torch.tensor([0, 2])


def test_saliency_and_smoothgrad_linear():
    model, w, x, t = setup()
    expect = w[t].abs().amax(dim=1)
    torch.testing.assert_close(METHODS["saliency"](model, x, t), expect)
    torch.testing.assert_close(METHODS["smoothgrad"](model, x, t, nt_samples=4), expect)  # gradient is constant


def test_integrated_gradients_linear_is_input_times_weight():
    model, w, x, t = setup()
    torch.testing.assert_close(METHODS["integrated_gradients"](model, x, t), (x * w[t]).sum(dim=1),
                               atol=1e-5, rtol=1e-4)


def test_occlusion_linear_window_drop():
    model, w, x, t = setup()
    contrib = (x * w[t]).sum(dim=1)  # (B, 4, 4)
    window = contrib.reshape(2, 2, 2, 2, 2).sum(dim=(2, 4))  # 2 x 2 windows
    expect = window.repeat_interleave(2, 1).repeat_interleave(2, 2)
    torch.testing.assert_close(METHODS["occlusion"](model, x, t, window=2), expect, atol=1e-5, rtol=1e-5)


class SplitTokens(nn.Module):
    """Reshape wrapper for Captum: (B, N, C) tokens -> (B, C, gh, gw) patches (prefix stashed)."""

    def __init__(self, prefix, grid):
        super().__init__()
        self.prefix, self.grid, self.stash = prefix, grid, None

    def forward(self, x):
        self.stash = x[:, :self.prefix]
        b, _, c = x.shape
        return x[:, self.prefix:].reshape(b, *self.grid, c).permute(0, 3, 1, 2)


class MergeTokens(nn.Module):
    def __init__(self, split):
        super().__init__()
        self.split = split

    def forward(self, g):
        b, c = g.shape[:2]
        return torch.cat([self.split.stash, g.permute(0, 2, 3, 1).reshape(b, -1, c)], dim=1)


def test_gradcam_equals_captum_layer_gradcam():
    from captum.attr import LayerGradCam
    model = tiny_vit(img=16, patch=4, dim=16, seed=7)
    x = torch.randn(3, 3, 16, 16)
    ours = explain(model, x, ["gradcam"])["gradcam"]
    targets = model(x).argmax(1)
    split = SplitTokens(1, (4, 4))
    blk = model.blocks[-1]
    blk.norm1 = nn.Sequential(blk.norm1, split, MergeTokens(split))
    ref = LayerGradCam(model, split).attribute(x, target=targets, relu_attributions=True)[:, 0]
    torch.testing.assert_close(ours, ref.detach(), atol=1e-6, rtol=1e-5)


def test_baselines():
    model = tiny_vit(img=16, patch=4, dim=16)
    x = torch.randn(3, 3, 16, 16)
    r = METHODS["baseline_random"](model, x, None)
    assert r.shape == (3, 4, 4) and (r >= 0).all() and (r < 1).all()
    torch.testing.assert_close(METHODS["baseline_random"](model, x[1:2], None), r[1:2])  # per image
    assert not torch.equal(METHODS["baseline_random"](model, x, None, seed=1), r)
    c = METHODS["baseline_centre"](model, x, None, sigma=0.25)
    # 4 x 4 grid, centres at +-0.125, +-0.375: corner exp(-(2 * .375^2) / (2 * .0625)) = exp(-2.25)
    assert c[0, 0, 0].item() == pytest.approx(float(torch.exp(torch.tensor(-2.25))), rel=1e-6)
    assert c[0, 1, 1].item() == pytest.approx(float(torch.exp(torch.tensor(-0.25))), rel=1e-6)
