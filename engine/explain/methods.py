"""Explanation methods: pure functions ``trace -> maps (B, gh, gw)``, registered by name.

Every method reads an :class:`~engine.explain.trace.AttentionTrace` (which already carries the
explained target class) and returns raw rule values on the token grid -- no min-max scaling, which
belongs to display and would couple the images of a batch.  ``METHODS[name]`` gives a
:class:`MethodInfo`; ``version`` is part of every stored result's key, bump it when a rule's
meaning changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .trace import AttentionTrace


@dataclass(frozen=True)
class MethodInfo:
    name: str
    fn: Callable[..., torch.Tensor]
    version: int
    needs_grads: bool
    reference: str

    def __call__(self, trace: AttentionTrace, **params) -> torch.Tensor:
        return self.fn(trace, **params)


METHODS: dict[str, MethodInfo] = {}


def register_method(name: str, *, version: int, needs_grads: bool, reference: str):
    def deco(fn):
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered")
        METHODS[name] = MethodInfo(name, fn, version, needs_grads, reference)
        return fn
    return deco


def cls_row_to_grid(rows: torch.Tensor, trace: AttentionTrace) -> torch.Tensor:
    """(B, N) relevance of each token for the CLS token -> (B, gh, gw) over patch tokens."""
    gh, gw = trace.grid
    patches = rows[:, trace.num_prefix_tokens:]
    if patches.shape[1] != gh * gw:
        raise ValueError(f"{patches.shape[1]} patch tokens do not fill a {gh}x{gw} grid")
    return patches.reshape(-1, gh, gw).float()


def fuse_heads(a: torch.Tensor, how: str) -> torch.Tensor:
    """(B, heads, N, N) -> (B, N, N) by mean / max / min over heads."""
    if how == "mean":
        return a.mean(dim=1)
    if how == "max":
        return a.amax(dim=1)
    if how == "min":
        return a.amin(dim=1)
    raise ValueError(f"head_fusion {how!r} is not one of ['mean', 'max', 'min']")


@register_method("attention", version=1, needs_grads=False,
                 reference="raw CLS attention of one block (e.g. Dosovitskiy et al. 2021; Caron et al. 2021)")
def attention(trace: AttentionTrace, layer: int = -1, head_fusion: str = "mean") -> torch.Tensor:
    """CLS-row attention of block ``layer`` (default the last), heads fused by ``head_fusion``.

    map[b, p] = fuse_h A_l[b, h, 0, prefix + p]
    """
    n = len(trace.attentions)
    if not -n <= layer < n:
        raise ValueError(f"layer {layer} is out of range for a model with {n} blocks")
    a = fuse_heads(trace.attentions[layer], head_fusion)
    return cls_row_to_grid(a[:, 0, :], trace)


@register_method("chefer_gae", version=1, needs_grads=True,
                 reference="Chefer, Gur & Wolf, ICCV 2021, Generic Attention-model Explainability, eq. (5)-(6)")
def chefer_gae(trace: AttentionTrace) -> torch.Tensor:
    """Generic attention explainability for self-attention (Chefer et al., ICCV 2021).

    R = I (N x N); for every block from the first to the last:
        Abar = mean_heads( clamp(grad(A) * A, min=0) )
        R    = R + Abar @ R
    map = R[CLS, patch tokens].
    """
    if any(g is None for g in trace.attention_grads):
        raise ValueError("chefer_gae needs attention gradients; capture the trace with with_grads=True")
    a0 = trace.attentions[0]
    b, _, n, _ = a0.shape
    r = torch.eye(n, dtype=torch.float32, device=a0.device).expand(b, n, n).clone()
    for a, g in zip(trace.attentions, trace.attention_grads):
        cam = (g.float() * a.float()).clamp(min=0).mean(dim=1)
        r = r + torch.bmm(cam, r)
    return cls_row_to_grid(r[:, 0, :], trace)
