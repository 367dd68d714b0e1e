"""Explanations: trace capture, the method registry and the public ``explain`` call."""
from __future__ import annotations

import torch

from ..common.precision import autocast
from . import attention_methods, baselines, captum_methods, gradcam, lrp, registry  # noqa: F401  (register the methods)
from .registry import METHODS, MethodInfo, register_method
from .trace import AttentionTrace, capture_trace
from .upsample import upsample_maps

__all__ = ["METHODS", "AttentionTrace", "MethodInfo", "capture_trace", "explain", "register_method",
           "run_methods", "upsample_maps"]


def _trace(model, images, targets, methods, params, not_applicable, keep_needed_layers_only, precision):
    """One forward + backward (under ``precision``) serving the trace ``methods``; None when none applies."""
    need_grads = any(METHODS[m].needs_grads for m in methods)
    store, handles = None, []
    if any(METHODS[m].needs_relevance for m in methods):
        try:
            lrp.check_supported(model)
            store, handles = lrp.record_activations(model)
        except NotImplementedError as exc:
            if not_applicable is None:
                raise
            for m in [m for m in methods if METHODS[m].needs_relevance]:
                not_applicable[m] = str(exc)
    layers: set[int] | None = set()
    for m in methods:  # keep only the blocks some requested method reads
        need = METHODS[m].layers(params.get(m, {})) if (METHODS[m].layers and keep_needed_layers_only) else None
        layers = None if need is None or layers is None else layers | need
    try:
        with autocast(images.device, precision):
            trace = capture_trace(model, images, targets, with_grads=need_grads, layers=layers)
    finally:
        for h in handles:
            h.remove()
    if store is not None:
        with torch.no_grad(), autocast(images.device, "fp32"):  # the relevance pass is float32
            trace.extras["lrp_cams"] = lrp.attention_relevances(model, store, trace.attentions, trace.targets,
                                                                trace.logits.shape[1])
    return trace


def run_methods(model: torch.nn.Module, images: torch.Tensor, methods: list[str],
                targets: torch.Tensor | None = None, params: dict[str, dict] | None = None,
                not_applicable: dict[str, str] | None = None, keep_needed_layers_only: bool = True,
                precision: str = "fp32", method_precision: dict[str, str] | None = None,
                memory_budget: int | None = None, failed: dict[str, str] | None = None,
                applied: dict[str, str] | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Maps of several methods plus the logits (float32) and the explained targets.

    All trace methods share one forward + one backward; Captum methods (``kind="model"``) run their
    own passes on the same images and targets.  A method that does not apply to the model raises
    ``NotImplementedError`` with the reason -- or, when a ``not_applicable`` dict is given, is left
    out of the result and its reason recorded there.  ``keep_needed_layers_only``: trace only the
    blocks the requested methods read (e.g. ``attention`` alone keeps one block; the other blocks
    stay on timm's fused attention), which saves memory and time; the maps are identical.

    ``precision``: ``fp32`` or ``bf16`` (autocast around the forward/backward passes).  Under
    ``bf16`` a method registered with ``reduced_precision=False`` (``chefer_lrp``) still runs in
    float32, on a trace of its own; ``method_precision`` overrides the precision per method (for
    measuring bf16-vs-fp32 agreement).  The explained targets come from the first trace (the
    reduced-precision one) and are passed to the others, so every map explains the same class.
    Maps are always float32.  ``memory_budget``: bytes of activations a Captum method may hold at
    once (None: :func:`captum_methods.default_memory_budget` of the device).

    A method that raises, or returns anything but one map per image (a ``(B, h, w)`` tensor: the call
    contract, :mod:`engine.explain.registry`), raises -- or, when a ``failed`` dict is given, is left out
    of the result with the reason recorded there, and the other methods' maps are kept.

    ``applied``: when given, filled with the precision each returned map was computed at (the one
    decision of it: what the runner records beside the map).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; registered: {sorted(METHODS)}")
    if model.training:
        raise ValueError("explanations need the model in eval mode (call model.eval())")
    params = params or {}
    prec = {m: (method_precision or {}).get(m, registry.method_precision(m, precision)) for m in methods}
    trace_methods = [m for m in methods if METHODS[m].kind == "trace"]
    groups: dict[str, list[str]] = {}
    for m in sorted(trace_methods, key=lambda m: prec[m] == "fp32"):  # reduced precision first
        groups.setdefault(prec[m], []).append(m)
    traces: dict[str, object] = {}
    logits = None
    for p, group in groups.items():
        traces[p] = _trace(model, images, targets, group, params, not_applicable, keep_needed_layers_only, p)
        if logits is None:
            logits, targets = traces[p].logits, traces[p].targets
    if logits is None:
        with torch.no_grad(), autocast(images.device, precision):
            logits = model(images)
        targets = logits.argmax(dim=1) if targets is None else targets.to(logits.device).long()
    out = {}
    for m in methods:
        if not_applicable is not None and m in not_applicable:
            continue
        info = METHODS[m]
        try:
            if info.kind == "trace":
                maps = info(traces[prec[m]], **params.get(m, {}))
            else:
                extra = {"memory_budget": memory_budget} if info.memory_bounded else {}
                with autocast(images.device, prec[m]):
                    maps = info(model, images, targets, **params.get(m, {}), **extra)
            out[m] = _one_map_per_image(m, maps, images.shape[0])
            if applied is not None:
                applied[m] = prec[m]
        except NotImplementedError as exc:
            if not_applicable is None:
                raise
            not_applicable[m] = str(exc)
        except Exception as exc:
            if failed is None:
                raise
            failed[m] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
    return out, logits.detach().float(), targets


def _one_map_per_image(name: str, maps, batch: int) -> torch.Tensor:
    """``maps`` as float32, when it is a ``(batch, h, w)`` tensor (the call contract); ValueError otherwise."""
    if not torch.is_tensor(maps):
        raise ValueError(f"method {name!r} returned {type(maps).__name__}, not a tensor of shape ({batch}, h, w)")
    if maps.ndim != 3 or maps.shape[0] != batch or 0 in maps.shape or maps.is_complex() or maps.dtype == torch.bool:
        raise ValueError(f"method {name!r} returned a {maps.dtype} tensor of shape {tuple(maps.shape)}; the call "
                         f"contract is one real map per image, ({batch}, h, w)")
    return maps.float()


def explain(model: torch.nn.Module, images: torch.Tensor, methods: list[str],
            targets: torch.Tensor | None = None, params: dict[str, dict] | None = None) -> dict[str, torch.Tensor]:
    """Maps of several methods from one forward + backward (plus Captum's own passes).

    ``model``: a timm ViT in eval mode; ``images``: normalised (B, 3, H, W); ``targets``: (B,)
    classes or None for the predicted class; ``params``: per-method keyword arguments.
    Returns ``{name: float32 (B, gh, gw)}`` with the rule's raw values -- token grid for trace
    methods, input pixel grid ``(B, H, W)`` for Captum methods.
    """
    return run_methods(model, images, methods, targets, params)[0]
