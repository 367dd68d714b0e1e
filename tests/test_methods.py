"""Explanation methods: hand-computed values, trace correctness, batch equivalence."""
from __future__ import annotations

import pytest
import torch
from conftest import tiny_vit

from engine.explain import METHODS, AttentionTrace, capture_trace, explain, upsample_maps


def _trace(attns, grads, grid):
    a = [torch.tensor(x, dtype=torch.float32) for x in attns]
    g = [torch.tensor(x, dtype=torch.float32) for x in grads]
    return AttentionTrace(attentions=a, attention_grads=g, features=None, feature_grads=None,
                          logits=torch.zeros(a[0].shape[0], 2), targets=torch.zeros(a[0].shape[0], dtype=torch.long),
                          num_prefix_tokens=1, grid=grid)


def test_attention_hand_computed():
    # B=1, 2 heads, N=3 (CLS + 2 patches), grid 1 x 2
    last = [[[[0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]],
             [[0.2, 0.2, 0.6], [0.4, 0.4, 0.2], [0.1, 0.1, 0.8]]]]
    first = [[[[1.0, 0.0, 0.0]] * 3] * 2]
    tr = _trace([first, last], [first, last], (1, 2))
    torch.testing.assert_close(METHODS["attention"](tr), torch.tensor([[[0.25, 0.4]]]))
    torch.testing.assert_close(METHODS["attention"](tr, head_fusion="max"), torch.tensor([[[0.3, 0.6]]]))
    torch.testing.assert_close(METHODS["attention"](tr, head_fusion="min"), torch.tensor([[[0.2, 0.2]]]))
    torch.testing.assert_close(METHODS["attention"](tr, layer=0), torch.tensor([[[0.0, 0.0]]]))
    with pytest.raises(ValueError, match="out of range"):
        METHODS["attention"](tr, layer=2)


def test_chefer_gae_hand_computed():
    a1 = [[[[.5, .3, .2], [.1, .8, .1], [.3, .3, .4]]]]
    g1 = [[[[1, -1, 2], [0, 1, 0], [1, 1, -1]]]]
    # block 1: cam = clamp(g*a) = [[.5,0,.4],[0,.8,0],[.3,.3,0]]; R1 = I + cam -> CLS row [1.5, 0, .4]
    tr = _trace([a1], [g1], (1, 2))
    torch.testing.assert_close(METHODS["chefer_gae"](tr), torch.tensor([[[0.0, 0.4]]]))
    a2 = [[[[.2, .4, .4], [.5, .5, 0], [0, 0, 1]]]]
    g2 = [[[[1, 1, 1], [1, 1, 1], [1, 1, 1]]]]
    # block 2: R2 = R1 + A2 @ R1 -> CLS row [1.5,0,.4] + [.42,.84,.48] = [1.92,.84,.88]
    tr = _trace([a1, a2], [g1, g2], (1, 2))
    torch.testing.assert_close(METHODS["chefer_gae"](tr), torch.tensor([[[0.84, 0.88]]]))


def test_trace_matches_manual_attention_and_restores_model():
    model = tiny_vit()
    x = torch.randn(3, 3, 8, 8)
    fused_before = [b.attn.fused_attn for b in model.blocks]
    with torch.no_grad():
        ref_logits = model(x)
    seen = {}
    h = model.blocks[-1].norm1.register_forward_hook(lambda m, i, o: seen.__setitem__("x", o.detach()))
    tr = capture_trace(model, x)
    h.remove()
    torch.testing.assert_close(tr.logits, ref_logits, atol=1e-5, rtol=1e-5)  # unfused == fused
    attn = model.blocks[-1].attn
    b, n, c = seen["x"].shape
    qkv = attn.qkv(seen["x"]).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    manual = ((qkv[0] * attn.scale) @ qkv[1].transpose(-2, -1)).softmax(-1)
    torch.testing.assert_close(tr.attentions[-1], manual.detach(), atol=1e-6, rtol=1e-5)
    assert [b.attn.fused_attn for b in model.blocks] == fused_before
    assert all(len(b.attn.attn_drop._forward_hooks) == 0 for b in model.blocks)
    assert all(p.grad is None for p in model.parameters())
    assert tr.grid == (2, 2) and tr.num_prefix_tokens == 1
    assert torch.equal(tr.targets, ref_logits.argmax(1))


def test_gradients_match_independent_retain_grad_path():
    """Gradients from autograd.grad on the batch equal those of a classic per-image backward."""
    model = tiny_vit(seed=3)
    x = torch.randn(2, 3, 8, 8)
    tr = capture_trace(model, x)
    for i in range(2):
        store = []
        for b in model.blocks:
            b.attn.fused_attn = False

        def keep(_m, _inp, out):
            out.retain_grad()
            store.append(out)

        hs = [b.attn.attn_drop.register_forward_hook(keep) for b in model.blocks]
        logits = model(x[i:i + 1])
        logits[0, tr.targets[i]].backward()
        for h in hs:
            h.remove()
        for k, a in enumerate(store):
            torch.testing.assert_close(tr.attention_grads[k][i], a.grad[0], atol=1e-6, rtol=1e-5)
        model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_batch_of_n_equals_n_batches_of_one(method):
    model = tiny_vit(img=16, patch=4, dim=16)  # 4 x 4 grid
    x = torch.randn(4, 3, 16, 16)
    batched = explain(model, x, [method])[method]
    token_grid = METHODS[method].kind == "trace" or method.startswith("baseline_")
    expect = (4, 4, 4) if token_grid else (4, 16, 16)  # token grid / Captum's input grid
    assert batched.shape == expect and batched.dtype == torch.float32
    singles = torch.cat([explain(model, x[i:i + 1], [method])[method] for i in range(4)])
    torch.testing.assert_close(batched, singles, atol=1e-6, rtol=1e-5)


def test_explicit_target_changes_gradient_methods_only():
    model = tiny_vit(num_classes=3, img=16, patch=4, dim=16, seed=5)
    x = torch.randn(2, 3, 16, 16)
    pred = explain(model, x, ["attention", "chefer_gae"])
    other = (model(x).argmax(1) + 1) % 3
    alt = explain(model, x, ["attention", "chefer_gae"], targets=other)
    torch.testing.assert_close(pred["attention"], alt["attention"])  # no target dependence
    assert not torch.allclose(pred["chefer_gae"], alt["chefer_gae"])


def test_prefix_tokens_distilled_deit():
    import timm
    model = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, img_size=16, patch_size=4,
                              depth=2, num_heads=2, embed_dim=16, num_classes=3).eval()
    maps = explain(model, torch.randn(2, 3, 16, 16), ["attention", "chefer_gae"])
    assert model.num_prefix_tokens == 2
    assert all(m.shape == (2, 4, 4) for m in maps.values())


def test_not_applicable_model_says_why():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2)).eval()
    with pytest.raises(NotImplementedError, match="not applicable"):
        explain(model, torch.randn(1, 3, 2, 2), ["attention"])


def test_training_mode_refused_and_unknown_method():
    model = tiny_vit().train()
    with pytest.raises(ValueError, match="eval mode"):
        capture_trace(model, torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="unknown methods"):
        explain(model.eval(), torch.randn(1, 3, 8, 8), ["nope"])


def test_upsample_hand_computed():
    m = torch.tensor([[[0.0, 1.0]]])  # 1 x 2 -> 1 x 4 with align_corners=False
    torch.testing.assert_close(upsample_maps(m, (1, 4)), torch.tensor([[[0.0, 0.25, 0.75, 1.0]]]))


def test_avg_pool_uses_mean_of_patch_rows():
    """MAE-style global pooling: the 'CLS row' is the mean of the pooled (patch) tokens' rows."""
    a = torch.tensor([[[[0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]]])
    tr = AttentionTrace([a], [a], None, None, torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), 1, (1, 2),
                        pool="avg")
    torch.testing.assert_close(METHODS["attention"](tr), torch.tensor([[[0.55, 0.25]]]))  # mean of rows 1, 2
    model = tiny_vit(img=16, patch=4, dim=16, global_pool="avg")
    assert capture_trace(model, torch.randn(1, 3, 16, 16)).pool == "avg"


@pytest.mark.parametrize("methods", [["attention"], ["gradcam_attn"], ["gradcam"], ["attention", "gradcam"]])
def test_keeping_only_needed_layers_gives_identical_maps(methods):
    model = tiny_vit(img=16, patch=4, dim=16, depth=3)
    x = torch.randn(2, 3, 16, 16)
    from engine.explain import run_methods
    lean = run_methods(model, x, methods)[0]
    full = run_methods(model, x, methods, keep_needed_layers_only=False)[0]
    for m in methods:
        torch.testing.assert_close(lean[m], full[m], atol=1e-6, rtol=1e-5)
    tr = capture_trace(model, x, layers={-1})
    assert tr.attentions[0] is None and tr.attentions[2] is not None
    with pytest.raises(ValueError, match="did not keep"):
        METHODS["rollout"](tr)
