"""Explanations: trace capture, the method registry and the public ``explain`` call."""
from __future__ import annotations

import torch

from . import attention_methods, baselines, captum_methods, gradcam, lrp  # noqa: F401  (register the methods)
from .registry import METHODS, MethodInfo, register_method
from .trace import AttentionTrace, capture_trace
from .upsample import upsample_maps

__all__ = ["METHODS", "AttentionTrace", "MethodInfo", "capture_trace", "explain", "register_method",
           "run_methods", "upsample_maps"]


def run_methods(model: torch.nn.Module, images: torch.Tensor, methods: list[str],
                targets: torch.Tensor | None = None, params: dict[str, dict] | None = None,
                not_applicable: dict[str, str] | None = None, keep_needed_layers_only: bool = True
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Maps of several methods plus the logits and the explained targets.

    All trace methods share one forward + one backward; Captum methods (``kind="model"``) run their
    own passes on the same images and targets.  A method that does not apply to the model raises
    ``NotImplementedError`` with the reason -- or, when a ``not_applicable`` dict is given, is left
    out of the result and its reason recorded there.  ``keep_needed_layers_only``: trace only the
    blocks the requested methods read (e.g. ``attention`` alone keeps one block; the other blocks
    stay on timm's fused attention), which saves memory and time; the maps are identical.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; registered: {sorted(METHODS)}")
    params = params or {}
    trace_methods = [m for m in methods if METHODS[m].kind == "trace"]
    if trace_methods:
        need_grads = any(METHODS[m].needs_grads for m in trace_methods)
        store, handles = None, []
        if any(METHODS[m].needs_relevance for m in trace_methods):
            try:
                lrp.check_supported(model)
                store, handles = lrp.record_activations(model)
            except NotImplementedError as exc:
                if not_applicable is None:
                    raise
                for m in [m for m in trace_methods if METHODS[m].needs_relevance]:
                    not_applicable[m] = str(exc)
        layers: set[int] | None = set()
        for m in trace_methods:  # keep only the blocks some requested method reads
            need = METHODS[m].layers(params.get(m, {})) if (METHODS[m].layers and keep_needed_layers_only) else None
            layers = None if need is None or layers is None else layers | need
        try:
            trace = capture_trace(model, images, targets, with_grads=need_grads, layers=layers)
        finally:
            for h in handles:
                h.remove()
        if store is not None:
            with torch.no_grad():
                trace.extras["lrp_cams"] = lrp.attention_relevances(model, store, trace.attentions, trace.targets,
                                                                    trace.logits.shape[1])
        logits, targets = trace.logits, trace.targets
    else:
        if model.training:
            raise ValueError("explanations need the model in eval mode (call model.eval())")
        with torch.no_grad():
            logits = model(images)
        targets = logits.argmax(dim=1) if targets is None else targets.to(logits.device).long()
    out = {}
    for m in methods:
        if not_applicable is not None and m in not_applicable:
            continue
        info = METHODS[m]
        try:
            if info.kind == "trace":
                out[m] = info(trace, **params.get(m, {}))
            else:
                out[m] = info(model, images, targets, **params.get(m, {}))
        except NotImplementedError as exc:
            if not_applicable is None:
                raise
            not_applicable[m] = str(exc)
    return out, logits.detach(), targets


def explain(model: torch.nn.Module, images: torch.Tensor, methods: list[str],
            targets: torch.Tensor | None = None, params: dict[str, dict] | None = None) -> dict[str, torch.Tensor]:
    """Maps of several methods from one forward + backward (plus Captum's own passes).

    ``model``: a timm ViT in eval mode; ``images``: normalised (B, 3, H, W); ``targets``: (B,)
    classes or None for the predicted class; ``params``: per-method keyword arguments.
    Returns ``{name: float32 (B, gh, gw)}`` with the rule's raw values -- token grid for trace
    methods, input pixel grid ``(B, H, W)`` for Captum methods.
    """
    return run_methods(model, images, methods, targets, params)[0]
