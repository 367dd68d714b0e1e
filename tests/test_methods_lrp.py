"""LRP rules of chefer_lrp, hand-computed, and the method on real timm models."""
from __future__ import annotations

import pytest
import torch
from conftest import tiny_vit

from engine.explain import explain
from engine.explain.lrp import add_relprop, clone_relprop, linear_relprop, matmul_relprop, safe_divide


def T(x):
    return torch.tensor(x, dtype=torch.float32)


def test_safe_divide():
    torch.testing.assert_close(safe_divide(T([1.0, 2.0, 3.0]), T([0.0, 4.0, -2.0])), T([0.0, 0.5, -1.5]))


def test_linear_alpha1_beta0_hand_computed():
    # x = [2, -1], W = [[1, -1], [2, 1]]: z0 = 2*1 + (-1)(-1) = 3, z1 = 2*2 = 4 (negative x * positive w dropped)
    # r = [3, 2] -> s = [1, .5]; R = x+ * (s @ W+) + x- * (s @ W-) = [2,0]*[2,.5] + [0,-1]*[0,-1] = [4, 1]
    r = linear_relprop(T([[3.0, 2.0]]), T([[2.0, -1.0]]), T([[1.0, -1.0], [2.0, 1.0]]))
    torch.testing.assert_close(r, T([[4.0, 1.0]]))


def test_add_rule_hand_computed():
    # z = a + b = [4, 0]; s = r / z = [.5, 0]; ra = [.5, 0], rb = [1.5, 0]; rescaled to |.5|:|1.5| of sum(r) = 3
    ra, rb = add_relprop(T([[2.0, 1.0]]), T([[1.0, 2.0]]), T([[3.0, -2.0]]))
    torch.testing.assert_close(ra, T([[0.75, 0.0]]))
    torch.testing.assert_close(rb, T([[2.25, 0.0]]))


def test_add_rule_is_per_image():
    a, b, r = torch.rand(2, 3) + 0.1, torch.rand(2, 3) + 0.1, torch.rand(2, 3)
    ra, rb = add_relprop(r, a, b)
    ra0, rb0 = add_relprop(r[:1], a[:1], b[:1])
    torch.testing.assert_close(ra[:1], ra0)
    torch.testing.assert_close(rb[:1], rb0)
    torch.testing.assert_close((ra + rb).sum(1), r.sum(1))  # conserved per image


def test_matmul_and_clone_hand_computed():
    # z = [1,2] @ [3,4]^T = 11; r = 22 -> s = 2; R_a = a * (s b^T) / 2 = [3, 8]; R_b = b * (a^T s) / 2 = [3, 8]^T
    ra, rb = matmul_relprop(T([[22.0]]), T([[1.0, 2.0]]), T([[3.0], [4.0]]))
    torch.testing.assert_close(ra, T([[3.0, 8.0]]))
    torch.testing.assert_close(rb, T([[3.0], [8.0]]))
    torch.testing.assert_close(clone_relprop(T([2.0, 0.0]), T([1.0, 1.0]), T([3.0, 3.0])), T([4.0, 0.0]))


def test_chefer_lrp_on_tiny_vit_start_layer_and_targets():
    model = tiny_vit(num_classes=3, img=16, patch=4, dim=16, seed=11, depth=3)
    x = torch.randn(2, 3, 16, 16)
    full = explain(model, x, ["chefer_lrp"])["chefer_lrp"]
    assert full.shape == (2, 4, 4) and torch.isfinite(full).all() and (full >= 0).all()
    late = explain(model, x, ["chefer_lrp"], params={"chefer_lrp": {"start_layer": 2}})["chefer_lrp"]
    assert not torch.allclose(full, late)
    other = explain(model, x, ["chefer_lrp"], targets=(model(x).argmax(1) + 1) % 3)["chefer_lrp"]
    assert not torch.allclose(full, other)
    with pytest.raises(ValueError, match="start_layer"):
        explain(model, x, ["chefer_lrp"], params={"chefer_lrp": {"start_layer": 3}})


def test_chefer_lrp_layerscale_and_avg_pool():
    model = tiny_vit(img=16, patch=4, dim=16, init_values=0.1, global_pool="avg", class_token=False)
    maps = explain(model, torch.randn(2, 3, 16, 16), ["chefer_lrp"])["chefer_lrp"]
    assert maps.shape == (2, 4, 4) and torch.isfinite(maps).all()


def test_chefer_lrp_refuses_distilled_heads():
    import timm
    model = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, img_size=16, patch_size=4,
                              depth=2, num_heads=2, embed_dim=16, num_classes=3).eval()
    with pytest.raises(NotImplementedError, match="distilled"):
        explain(model, torch.randn(1, 3, 16, 16), ["chefer_lrp"])


def test_chefer_lrp_product_hand_computed():
    """Abar = I + mean_h clamp(dA * R_A); product without row normalisation, later blocks on the left."""
    from engine.explain import METHODS, AttentionTrace
    z = torch.zeros(1, 1, 3, 3)
    g1 = torch.tensor([[[[0, 1, 2], [0, 0, 0], [0, 0, 0]]]], dtype=torch.float32)
    r1 = torch.tensor([[[[0, .5, -1], [0, 0, 0], [0, 0, 0]]]], dtype=torch.float32)  # clamp -> [0, .5, 0]
    g2 = torch.tensor([[[[0, 0, 0], [0, 0, 0], [0, 2, 0]]]], dtype=torch.float32)
    r2 = torch.tensor([[[[0, 0, 0], [0, 0, 0], [0, .5, 0]]]], dtype=torch.float32)  # M2[2, 1] = 1
    tr = AttentionTrace([z, z], [g1, g2], None, None, torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), 1,
                        (1, 2), extras={"lrp_cams": [r1, r2]})
    # (I + M2)(I + M1): row 0 = row 0 of (I + M1) = [1, .5, 0] (M2 has no row 0)
    torch.testing.assert_close(METHODS["chefer_lrp"](tr), torch.tensor([[[0.5, 0.0]]]))
    # start_layer=1: only I + M2 -> row 0 = [1, 0, 0]
    torch.testing.assert_close(METHODS["chefer_lrp"](tr, start_layer=1), torch.tensor([[[0.0, 0.0]]]))
    g2b = torch.tensor([[[[0, 0, 0], [0, 0, 0], [0, 0, 0]]]], dtype=torch.float32)
    g2b[0, 0, 0, 2] = 4.0
    r2b = torch.zeros(1, 1, 3, 3)
    r2b[0, 0, 0, 2] = 0.5  # M2[0, 2] = 2 -> row 0 of (I + M2)(I + M1) = [1, .5, 0] + 2 * [0, 0, 1]
    tr.attention_grads[1], tr.extras["lrp_cams"][1] = g2b, r2b
    torch.testing.assert_close(METHODS["chefer_lrp"](tr), torch.tensor([[[0.5, 2.0]]]))  # not normalised
