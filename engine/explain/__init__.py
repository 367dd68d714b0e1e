"""Explanations: trace capture, the method registry and the public ``explain`` call."""
from __future__ import annotations

import torch

from . import attention_methods, gradcam  # noqa: F401  (register the methods)
from .registry import METHODS, MethodInfo, register_method
from .trace import AttentionTrace, capture_trace
from .upsample import upsample_maps

__all__ = ["METHODS", "AttentionTrace", "MethodInfo", "capture_trace", "explain", "register_method",
           "upsample_maps"]


def explain(model: torch.nn.Module, images: torch.Tensor, methods: list[str],
            targets: torch.Tensor | None = None, params: dict[str, dict] | None = None) -> dict[str, torch.Tensor]:
    """Maps of several methods from one forward + backward.

    ``model``: a timm ViT in eval mode; ``images``: normalised (B, 3, H, W); ``targets``: (B,)
    classes or None for the predicted class; ``params``: per-method keyword arguments.
    Returns ``{name: float32 (B, gh, gw)}`` with the rule's raw values.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; registered: {sorted(METHODS)}")
    params = params or {}
    need_grads = any(METHODS[m].needs_grads for m in methods)
    trace = capture_trace(model, images, targets, with_grads=need_grads)
    return {m: METHODS[m](trace, **params.get(m, {})) for m in methods}
