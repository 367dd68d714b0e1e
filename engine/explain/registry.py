"""Method registry and the helpers every trace method shares.

Every method reads an :class:`~engine.explain.trace.AttentionTrace` (which already carries the
explained target class) and returns raw rule values on the token grid -- no min-max scaling, which
belongs to display and would couple the images of a batch.  ``METHODS[name]`` gives a
:class:`MethodInfo`; ``version`` is part of every stored result's key, bump it when a rule's
meaning changes.  Methods with ``kind == "model"`` (Captum attributions) take the model and the
images instead of a trace.  ``reduced_precision=False`` keeps a method in float32 when the run's
precision is ``bf16`` (see :func:`method_precision` and docs/methods.md).
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
    kind: str = "trace"  # 'trace': fn(trace, **params); 'model': fn(model, images, targets, **params)
    layers: Callable[[dict], set[int] | None] | None = None  # blocks a trace method reads (None: all)
    needs_relevance: bool = False  # needs the LRP relevance pass (trace.extras['lrp_cams'])
    reduced_precision: bool = True  # may run under bf16 autocast when the run's precision is bf16
    memory_bounded: bool = False  # a 'model' method taking memory_budget= (bytes of activations per pass)

    def __call__(self, *args, **params) -> torch.Tensor:
        return self.fn(*args, **params)


METHODS: dict[str, MethodInfo] = {}


def register_method(name: str, *, version: int, needs_grads: bool, reference: str, kind: str = "trace",
                    needs_relevance: bool = False, layers: Callable[[dict], set[int] | None] | None = None,
                    reduced_precision: bool = True, memory_bounded: bool = False):
    if kind not in ("trace", "model"):
        raise ValueError(f"kind {kind!r} is not 'trace' or 'model'")

    def deco(fn):
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered")
        METHODS[name] = MethodInfo(name=name, fn=fn, version=version, needs_grads=needs_grads, reference=reference,
                                   kind=kind, needs_relevance=needs_relevance, layers=layers,
                                   reduced_precision=reduced_precision, memory_bounded=memory_bounded)
        return fn
    return deco


def method_precision(name: str, precision: str) -> str:
    """The precision ``name`` runs at in a run of ``precision``: ``fp32`` for methods registered with
    ``reduced_precision=False`` (their maps move too far under bf16), else ``precision``."""
    return precision if METHODS[name].reduced_precision else "fp32"


def output_row(mat: torch.Tensor, trace: AttentionTrace) -> torch.Tensor:
    """The row(s) of a token x token matrix that feed the classifier: (..., N, N) -> (..., N).

    ``pool == 'token'``: the CLS row.  ``pool == 'avg'`` (MAE-style global pooling, or no CLS token):
    the mean of the rows of the pooled tokens (the patch tokens), i.e. the relevance of every token
    for the pooled representation the head sees.
    """
    if trace.pool == "token":
        return mat[..., 0, :]
    return mat[..., trace.num_prefix_tokens:, :].mean(dim=-2)


def cls_row_to_grid(rows: torch.Tensor, trace: AttentionTrace) -> torch.Tensor:
    """(B, N) relevance of each token for the output token(s) -> (B, gh, gw) over patch tokens."""
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


def patch_tokens_to_grid(tokens: torch.Tensor, trace: AttentionTrace) -> torch.Tensor:
    """(B, N, C) token tensor -> (B, C, gh, gw) over the patch tokens (prefix tokens dropped)."""
    gh, gw = trace.grid
    patches = tokens[:, trace.num_prefix_tokens:, :]
    if patches.shape[1] != gh * gw:
        raise ValueError(f"{patches.shape[1]} patch tokens do not fill a {gh}x{gw} grid")
    return patches.reshape(tokens.shape[0], gh, gw, tokens.shape[-1]).permute(0, 3, 1, 2)


def require_attention(trace: AttentionTrace, name: str, layers=None) -> None:
    if not trace.attentions:
        raise NotImplementedError(f"{name} is not applicable: {trace.extras.get('no_attention', 'no attention maps')}")
    idx = range(len(trace.attentions)) if layers is None else layers
    if any(trace.attentions[i] is None for i in idx):
        raise ValueError(f"{name} needs attention maps the trace did not keep (captured with layers=...)")


def require_grads(trace: AttentionTrace, name: str, layers=None) -> None:
    require_attention(trace, name, layers)
    idx = range(len(trace.attentions)) if layers is None else layers
    if any(trace.attention_grads[i] is None for i in idx):
        raise ValueError(f"{name} needs attention gradients; capture the trace with with_grads=True")
