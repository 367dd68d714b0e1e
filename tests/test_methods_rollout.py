"""Rollout family, Grad-CAM on attention and Grad-CAM on tokens: hand-computed values."""
from __future__ import annotations

import pytest
import torch

from engine.explain import METHODS, AttentionTrace
from engine.explain.attention_methods import discard_lowest

A1 = [[[[.5, .3, .2], [.1, .8, .1], [.3, .3, .4]]]]
A2 = [[[[.2, .4, .4], [.5, .5, 0], [0, 0, 1]]]]
G1 = [[[[1, -1, 2], [0, 1, 0], [1, 1, -1]]]]
ONES = [[[[1, 1, 1], [1, 1, 1], [1, 1, 1]]]]


def trace(attns, grads=None, grid=(1, 2), features=None, feature_grads=None):
    a = [torch.tensor(x, dtype=torch.float32) for x in attns]
    g = [torch.tensor(x, dtype=torch.float32) for x in (grads or attns)]
    f = None if features is None else torch.tensor(features, dtype=torch.float32)
    fg = None if feature_grads is None else torch.tensor(feature_grads, dtype=torch.float32)
    return AttentionTrace(a, g, f, fg, torch.zeros(a[0].shape[0], 2), torch.zeros(a[0].shape[0], dtype=torch.long),
                          1, grid)


def close(got, expect):
    torch.testing.assert_close(got, torch.tensor([[expect]], dtype=torch.float32), atol=1e-6, rtol=1e-5)


def test_rollout_hand_computed():
    # (A1 + I) rows / 2 -> [[.75,.15,.1],[.05,.9,.05],[.15,.15,.7]]
    close(METHODS["rollout"](trace([A1])), [0.15, 0.1])
    # (A2 + I) / 2 -> [[.6,.2,.2],[.25,.75,0],[0,0,1]]; CLS row of A2n @ A1n = [.49, .30, .21]
    close(METHODS["rollout"](trace([A1, A2])), [0.30, 0.21])
    close(METHODS["rollout"](trace([A1, A2]), start_layer=1), [0.2, 0.2])


def test_rollout_rows_not_columns():
    """vit-explain divides by a.sum(dim=-1) without keepdim (column-wise); rows must sum to 1."""
    a = [[[[.7, .2, .1], [.1, .1, .8], [.3, .6, .1]]]]
    out = METHODS["rollout"](trace([a]))
    close(out, [0.2 / 2, 0.1 / 2])  # every row of A + I sums to 2


def test_discard_hand_computed_and_cls_spared():
    # k = int(9 * .34) = 3 lowest: .1, .1, .2 -> zeroed; rows of A+I: [1.5,.3,0]/1.8
    close(METHODS["rollout"](trace([A1]), discard_ratio=0.34), [0.3 / 1.8, 0.0])
    a = torch.tensor([[[.05, .5, .45], [.3, .4, .3], [.2, .2, .6]]])
    torch.testing.assert_close(discard_lowest(a, 0.12), a)  # the lowest entry is CLS->CLS: spared
    with pytest.raises(ValueError):
        discard_lowest(a, 1.0)


def test_head_fusion_in_rollout():
    two_heads = [[A1[0][0], A2[0][0]]]
    mean = METHODS["rollout"](trace([two_heads]), head_fusion="mean")
    mx = METHODS["rollout"](trace([two_heads]), head_fusion="max")
    # mean of heads, row 0: [.35,.35,.3] + I -> [1.35,.35,.3]/2
    close(mean, [0.175, 0.15])
    # max of heads, row 0: [.5,.4,.4] + I -> [1.5,.4,.4]/2.3
    close(mx, [0.4 / 2.3, 0.4 / 2.3])


def test_grad_rollout_hand_computed_and_pairing():
    # clamp(A1*G1) = [[.5,0,.4],[0,.8,0],[.3,.3,0]]; + I -> row 0 [1.5, 0, .4] / 1.9
    close(METHODS["grad_rollout"](trace([A1], [G1])), [0.0, 0.4 / 1.9])
    # two blocks: each block with its own gradient (not reversed)
    paired = METHODS["grad_rollout"](trace([A1, A2], [G1, ONES]))
    swapped = METHODS["grad_rollout"](trace([A1, A2], [ONES, G1]))
    # block 1 -> R1 rows: [1.5,0,.4]/1.9, [0,1.8,0]/1.8, [.3,.3,1]/1.6 ; block 2 (A2 * 1) + I / 2 -> [.6,.2,.2]
    r1 = torch.tensor([[1.5 / 1.9, 0, .4 / 1.9], [0, 1, 0], [.3 / 1.6, .3 / 1.6, 1 / 1.6]])
    row0 = torch.tensor([.6, .2, .2]) @ r1
    close(paired, row0[1:].tolist())
    assert not torch.allclose(paired, swapped)


def test_gradcam_attn_hand_computed():
    last = [[[[.5, .3, .2], [0, 0, 0], [0, 0, 0]], [[.2, .2, .6], [0, 0, 0], [0, 0, 0]]]]
    grad = [[[[9, 1, 3], [0, 0, 0], [0, 0, 0]], [[9, -1, 1], [0, 0, 0], [0, 0, 0]]]]
    # w0 = mean(1, 3) = 2, w1 = mean(-1, 1) = 0 -> mean_h = ([.6,.4] + 0) / 2
    close(METHODS["gradcam_attn"](trace([last], [grad])), [0.3, 0.2])
    grad[0][1][0] = [9, -2, -4]  # w1 = -3 -> ([.6,.4] + [-.6,-1.8]) / 2 = [0, -.7] -> clamp
    close(METHODS["gradcam_attn"](trace([last], [grad])), [0.0, 0.0])


def test_gradcam_tokens_hand_computed():
    f = [[[9, 9], [1, 2], [3, 4]]]  # CLS + 2 patches, 2 channels
    g = [[[9, 9], [1, 0], [3, -2]]]  # w0 = 2, w1 = -1 -> 2*[1,3] - [2,4] = [0, 2]
    close(METHODS["gradcam"](trace([A1], features=f, feature_grads=g)), [0.0, 2.0])
