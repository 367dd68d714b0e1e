"""Attention-based methods on the trace: raw attention, rollout, gradient rollout, Chefer's
generic attention explainability and Grad-CAM on the last attention map."""
from __future__ import annotations

from typing import Literal

import torch

from .registry import cls_row_to_grid, fuse_heads, output_row, register_method, require_attention, require_grads
from .trace import AttentionTrace

HeadFusion = Literal["mean", "max", "min"]  # fuse_heads' rules (another value is refused at plan time)


@register_method("attention", version=1, needs_grads=False, layers=lambda p: {p.get("layer", -1)},
                 reference="raw CLS attention of one block (e.g. Dosovitskiy et al. 2021; Caron et al. 2021)")
def attention(trace: AttentionTrace, layer: int = -1, head_fusion: HeadFusion = "mean") -> torch.Tensor:
    """CLS-row attention of block ``layer`` (default the last), heads fused by ``head_fusion``.

    map[b, p] = fuse_h A_l[b, h, 0, prefix + p]
    """
    n = len(trace.attentions)
    if n and not -n <= layer < n:
        raise ValueError(f"layer {layer} is out of range for a model with {n} blocks")
    require_attention(trace, "attention", [layer])
    a = fuse_heads(trace.attentions[layer], head_fusion)
    return cls_row_to_grid(output_row(a, trace), trace)


@register_method("chefer_gae", version=1, needs_grads=True,
                 reference="Chefer, Gur & Wolf, ICCV 2021, Generic Attention-model Explainability, eq. (5)-(6)")
def chefer_gae(trace: AttentionTrace) -> torch.Tensor:
    """Generic attention explainability for self-attention (Chefer et al., ICCV 2021).

    R = I (N x N); for every block from the first to the last:
        Abar = mean_heads( clamp(grad(A) * A, min=0) )
        R    = R + Abar @ R
    map = R[CLS, patch tokens].
    """
    require_grads(trace, "chefer_gae")
    a0 = trace.attentions[0]
    b, _, n, _ = a0.shape
    r = torch.eye(n, dtype=torch.float32, device=a0.device).expand(b, n, n).clone()
    for a, g in zip(trace.attentions, trace.attention_grads):
        cam = (g.float() * a.float()).clamp(min=0).mean(dim=1)
        r = r + torch.bmm(cam, r)
    return cls_row_to_grid(output_row(r, trace), trace)


def discard_lowest(fused: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero the ``int(N*N*ratio)`` lowest entries of each image's fused (N, N) map, except CLS->CLS.

    vit-explain's rule: the lowest entries are chosen among all N*N (CLS->CLS included) and
    CLS->CLS is then spared.  Applied to every image of the batch (vit-explain only touches image 0).
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {ratio}")
    b, n, _ = fused.shape
    k = int(n * n * ratio)
    if k == 0:
        return fused
    flat = fused.reshape(b, n * n)
    drop = torch.zeros_like(flat, dtype=torch.bool)
    drop.scatter_(1, flat.topk(k, dim=-1, largest=False).indices, True)
    drop[:, 0] = False  # never the CLS->CLS entry
    return flat.masked_fill(drop, 0.0).reshape(b, n, n)


def rollout_product(mats: list[torch.Tensor]) -> torch.Tensor:
    """prod_l norm_rows(A_l + I), later blocks multiplied on the left: A_L ... A_1."""
    b, n, _ = mats[0].shape
    eye = torch.eye(n, dtype=torch.float32, device=mats[0].device)
    result = eye.expand(b, n, n)
    for a in mats:
        a = a.float() + eye
        a = a / a.sum(dim=-1, keepdim=True)  # rows sum to 1 (not vit-explain's column-sum division)
        result = torch.bmm(a, result)
    return result


@register_method("rollout", version=1, needs_grads=False,
                 reference="Abnar & Zuidema, ACL 2020, Quantifying Attention Flow in Transformers (attention rollout)")
def rollout(trace: AttentionTrace, head_fusion: HeadFusion = "mean", discard_ratio: float = 0.0,
            start_layer: int = 0) -> torch.Tensor:
    """Attention rollout: per block fuse heads, optionally discard the lowest entries, add I,
    normalise rows to 1, multiply from the first block up; map = CLS row over patches."""
    require_attention(trace, "rollout")
    mats = [discard_lowest(fuse_heads(a, head_fusion), discard_ratio) for a in trace.attentions[start_layer:]]
    return cls_row_to_grid(output_row(rollout_product(mats), trace), trace)


@register_method("grad_rollout", version=1, needs_grads=True,
                 reference="vit-explain's gradient attention rollout (J. Gildenblat, 2020), after Abnar & Zuidema 2020")
def grad_rollout(trace: AttentionTrace, discard_ratio: float = 0.0) -> torch.Tensor:
    """Gradient attention rollout: per block mean_heads(A * dA), negatives set to 0, optional
    discard, then rollout (A + I, rows normalised, multiplied).  Each block is paired with its
    own gradient (vit-explain pairs forward-order attentions with backward-order gradients)."""
    require_grads(trace, "grad_rollout")
    mats = [discard_lowest((a.float() * g.float()).mean(dim=1).clamp(min=0), discard_ratio)
            for a, g in zip(trace.attentions, trace.attention_grads)]
    return cls_row_to_grid(output_row(rollout_product(mats), trace), trace)


@register_method("gradcam_attn", version=1, needs_grads=True, layers=lambda p: {p.get("layer", -1)},
                 reference="Grad-CAM (Selvaraju et al. 2017) on the last attention map, the baseline of Chefer et al. "
                           "2021")
def gradcam_attn(trace: AttentionTrace, layer: int = -1) -> torch.Tensor:
    """Heads are the channels: w_h = mean over patch columns of dA[h, CLS, patches];
    map = clamp(mean_h w_h * A[h, CLS, patches], min=0)."""
    require_grads(trace, "gradcam_attn", [layer])
    p = trace.num_prefix_tokens
    a = output_row(trace.attentions[layer].float(), trace)[:, :, p:]  # (B, H, patches)
    g = output_row(trace.attention_grads[layer].float(), trace)[:, :, p:]
    w = g.mean(dim=-1, keepdim=True)
    cam = (w * a).mean(dim=1).clamp(min=0)  # (B, patches)
    gh, gw = trace.grid
    return cam.reshape(-1, gh, gw)
