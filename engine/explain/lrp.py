"""Chefer, Gur & Wolf, CVPR 2021, *Transformer Interpretability Beyond Attention Visualization*
("transformer attribution"), on timm's own ViT modules and batched.

A relevance pass (LRP) runs from the classifier down through every block, using the activations
recorded by a forward hook pass.  The rules are those of the paper's reference implementation:

* Linear (head, qkv, proj, fc1, fc2): the alpha-beta rule with alpha = 1, beta = 0 -- relevance
  flows through the positive contributions ``x+ w+`` and ``x- w-``; biases take none.
* LayerNorm, GELU, softmax, dropout, LayerScale: relevance passes unchanged.
* Residual ``x + f(x)``: LRP-0 split ``R * x / (x + f)`` and ``R * f / (x + f)``, then each operand's
  relevance is rescaled so the two sums keep the ratio of their absolute sums and add up to the sum of
  ``R`` (per image; the reference sums over the whole batch of one).
* The split of a tensor into residual and branch (clone): relevances add (``x * sum_i R_i / x``).
* The two attention matmuls ``Q K^T`` and ``A V``: LRP-0 for a bilinear product, each operand's
  relevance halved.
* Token pooling: all relevance to the CLS token (``global_pool='avg'``: split over the pooled tokens
  in proportion to their contribution).
* Initial relevance: the one-hot vector of the target class at the logits.

Per block (paper eqs. 13-14): ``Abar = I + mean_heads(clamp(dA * R_A, min=0))`` where ``R_A`` is the
relevance of the attention map and ``dA`` the gradient of the target logit w.r.t. it; the product of
the ``Abar`` from ``start_layer`` up, later blocks on the left and **without** row normalisation (the
``compute_rollout_attention`` of the reference's ViT_LRP.py, whose normalisation lines are commented
out -- unlike the plain-rollout helper of the same name); map = CLS row over the patch tokens.
"""
from __future__ import annotations

import torch

from .registry import cls_row_to_grid, output_row, register_method, require_grads
from .trace import AttentionTrace, attention_blocks


def safe_divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a / b with the reference's stabiliser: |b| >= 1e-9 keeps its sign, 0 where b == 0."""
    den = b.clamp(min=1e-9) + b.clamp(max=1e-9)
    den = den + den.eq(0).to(den.dtype) * 1e-9
    return a / den * b.ne(0).to(b.dtype)


def linear_relprop(r: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Alpha-beta LRP (alpha = 1, beta = 0) for ``y = x W^T (+ b)``; ``r`` has y's shape."""
    pw, nw = weight.clamp(min=0), weight.clamp(max=0)
    px, nx = x.clamp(min=0), x.clamp(max=0)
    z = px @ pw.T + nx @ nw.T
    s = safe_divide(r, z)
    return px * (s @ pw) + nx * (s @ nw)


def _per_image_sum(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(dim=1).reshape(-1, *([1] * (t.ndim - 1)))


def add_relprop(r: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual ``z = a + b`` with the reference's rescaling (per image)."""
    s = safe_divide(r, a + b)
    ra, rb = a * s, b * s
    sa, sb = _per_image_sum(ra), _per_image_sum(rb)
    total = _per_image_sum(r)
    fa = safe_divide(sa.abs(), sa.abs() + sb.abs()) * total
    fb = safe_divide(sb.abs(), sa.abs() + sb.abs()) * total
    return ra * safe_divide(fa, sa), rb * safe_divide(fb, sb)


def clone_relprop(x: torch.Tensor, *rs: torch.Tensor) -> torch.Tensor:
    """A tensor used twice: ``x * sum_i safe_divide(R_i, x)``."""
    return x * sum(safe_divide(r, x) for r in rs)


def matmul_relprop(r: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LRP-0 for ``z = a @ b`` (batched over leading dims), each operand's share halved."""
    s = safe_divide(r, a @ b)
    return a * (s @ b.transpose(-2, -1)) / 2, b * (a.transpose(-2, -1) @ s) / 2


def record_activations(model: torch.nn.Module):
    """Forward hooks that store what the relevance pass needs, as float32 (the relevance pass runs in
    float32 even when the forward ran under bf16 autocast); returns (store, handles)."""
    store: dict = {"blocks": [dict() for _ in model.blocks]}
    handles = []

    def put(d, key, which):
        def hook(_m, inp, out):
            d[key] = (inp[0] if which == "in" else out).detach().float()
        return hook

    for blk, d in zip(model.blocks, store["blocks"]):
        handles.append(blk.register_forward_hook(lambda m, inp, out, d=d: d.update(x_in=inp[0].detach().float(),
                                                                                    x_out=out.detach().float())))
        handles.append(blk.attn.qkv.register_forward_hook(put(d, "qkv_in", "in")))
        handles.append(blk.attn.qkv.register_forward_hook(put(d, "qkv_out", "out")))
        handles.append(blk.attn.proj.register_forward_hook(put(d, "proj_in", "in")))
        handles.append(blk.attn.proj.register_forward_hook(put(d, "proj_out", "out")))
        handles.append(blk.norm2.register_forward_hook(put(d, "x_mid", "in")))
        handles.append(blk.mlp.fc1.register_forward_hook(put(d, "fc1_in", "in")))
        handles.append(blk.mlp.fc2.register_forward_hook(put(d, "fc2_in", "in")))
    handles.append(model.head.register_forward_hook(put(store, "head_in", "in")))
    handles.append(model.norm.register_forward_hook(put(store, "tokens", "out")))
    return store, handles


def check_supported(model: torch.nn.Module) -> None:
    attention_blocks(model)  # raises with the reason for models without global attention (Swin)
    why = None
    if not isinstance(getattr(model, "head", None), torch.nn.Linear):
        why = "the classifier head is not a single Linear layer"
    elif getattr(model, "head_dist", None) is not None:
        why = "distilled models average two heads (CLS and distillation token); not implemented"
    elif getattr(model, "attn_pool", None) is not None:
        why = "attention-pool heads are not implemented"
    elif getattr(model, "global_pool", "token") not in ("token", "avg"):
        why = f"global_pool={model.global_pool!r} is not implemented (token, avg are)"
    elif not all(hasattr(b, "mlp") and hasattr(b.mlp, "fc1") and hasattr(b.mlp, "fc2") for b in model.blocks):
        why = "blocks without a plain fc1/fc2 MLP (e.g. SwiGLU) are not implemented"
    if why:
        raise NotImplementedError(f"chefer_lrp on {type(model).__name__}: {why}")


def _pool_relprop(r: torch.Tensor, tokens: torch.Tensor, model) -> torch.Tensor:
    out = torch.zeros_like(tokens)
    if getattr(model, "global_pool", "token") == "token":
        x0 = tokens[:, 0]
        out[:, 0] = x0 * safe_divide(r, x0)
        return out
    p = model.num_prefix_tokens
    pooled = tokens[:, p:].mean(dim=1)
    s = safe_divide(r, pooled)
    out[:, p:] = tokens[:, p:] * s[:, None, :] / (tokens.shape[1] - p)
    return out


def attention_relevances(model: torch.nn.Module, store: dict, attentions: list[torch.Tensor],
                         targets: torch.Tensor, num_classes: int, stop_at: int = 0) -> list[torch.Tensor | None]:
    """Relevance of every block's attention map (``None`` below ``stop_at``)."""
    one_hot = torch.nn.functional.one_hot(targets, num_classes).to(store["head_in"].dtype)
    r = linear_relprop(one_hot, store["head_in"], model.head.weight)
    r = _pool_relprop(r, store["tokens"], model)  # final norm / fc_norm: identity
    cams: list[torch.Tensor | None] = [None] * len(model.blocks)
    for i in range(len(model.blocks) - 1, stop_at - 1, -1):
        blk, d = model.blocks[i], store["blocks"][i]
        x_mid = d["x_mid"]  # between the two residuals; branches: x_mid - x_in, x_out - x_mid
        r_res2, r_mlp = add_relprop(r, x_mid, d["x_out"] - x_mid)  # LayerScale, drop-path: identity
        r_mlp = linear_relprop(r_mlp, d["fc2_in"], blk.mlp.fc2.weight)  # dropout, GELU: identity
        r_mlp = linear_relprop(r_mlp, d["fc1_in"], blk.mlp.fc1.weight)  # norm2: identity
        r = clone_relprop(x_mid, r_res2, r_mlp)
        r_res1, r_attn = add_relprop(r, d["x_in"], x_mid - d["x_in"])
        r_attn = linear_relprop(r_attn, d["proj_in"], blk.attn.proj.weight)
        b, n, _ = d["proj_in"].shape
        h = blk.attn.num_heads
        r_attn = r_attn.reshape(b, n, h, -1).transpose(1, 2)  # (B, H, N, D)
        q, k, v = d["qkv_out"].reshape(b, n, 3, h, -1).permute(2, 0, 3, 1, 4)
        a = attentions[i].float()
        r_a, r_v = matmul_relprop(r_attn, a, v)
        cams[i] = r_a
        if i == stop_at:
            break
        q, k = blk.attn.q_norm(q), blk.attn.k_norm(k)
        r_q, r_k = matmul_relprop(r_a, q, k.transpose(-2, -1))  # softmax, scale: identity
        r_k = r_k.transpose(-2, -1)
        r_qkv = torch.stack([r_q, r_k, r_v]).permute(1, 3, 0, 2, 4).reshape(b, n, -1)
        r_branch = linear_relprop(r_qkv, d["qkv_in"], blk.attn.qkv.weight)  # norm1: identity
        r = clone_relprop(d["x_in"], r_res1, r_branch)
    return cams


@register_method("chefer_lrp", version=1, needs_grads=True, needs_relevance=True, reduced_precision=False,
                 reference="Chefer, Gur & Wolf, CVPR 2021, Transformer Interpretability Beyond Attention "
                           "Visualization (transformer attribution)")
def chefer_lrp(trace: AttentionTrace, start_layer: int = 0) -> torch.Tensor:
    require_grads(trace, "chefer_lrp")
    cams = trace.extras.get("lrp_cams") if trace.extras else None
    if cams is None:
        raise ValueError("chefer_lrp needs the relevance pass; call it through explain()/run_methods(), "
                         "which records activations when chefer_lrp is requested")
    n = len(trace.attentions)
    if not 0 <= start_layer < n:
        raise ValueError(f"start_layer {start_layer} is out of range for {n} blocks")
    b, t = trace.attentions[0].shape[0], trace.attentions[0].shape[-1]
    eye = torch.eye(t, dtype=torch.float32, device=trace.attentions[0].device)
    joint = eye.expand(b, t, t)
    for i in range(start_layer, n):
        abar = eye + (trace.attention_grads[i].float() * cams[i]).clamp(min=0).mean(dim=1)
        joint = torch.bmm(abar, joint)  # later blocks on the left; no row normalisation (paper eq. 14)
    return cls_row_to_grid(output_row(joint, trace), trace)
