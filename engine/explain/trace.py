"""One forward + one backward per batch -> an :class:`AttentionTrace`.

For every transformer block the trace holds the attention probabilities (after softmax, shape
``(B, heads, N, N)``) and the gradient of the explained score with respect to them; at the
Grad-CAM layer (default ``blocks[-1].norm1``) it holds the token features and their gradient.

timm's ``Attention`` computes ``softmax(q k^T * scale)`` and passes it through ``attn_drop``
before multiplying by ``v`` -- unless ``fused_attn`` is on, in which case the probabilities never
exist.  While tracing, ``fused_attn`` is switched off on every block (the unfused path is the
same function, so logits agree with the fused model to float rounding) and a forward hook on
``attn_drop`` (identity in eval mode) records its output.  Gradients come from
``torch.autograd.grad`` on those recorded tensors, so parameter ``.grad`` fields are never
touched.  On exit hooks are removed and ``fused_attn`` is restored.

The explained score of image ``b`` is its logit for ``targets[b]`` (pre-softmax, as in Chefer et
al. and vit-explain); the batch objective is their sum, and since images do not interact in a ViT
in eval mode, each image's gradients equal those of a batch of one.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch


@dataclass
class AttentionTrace:
    attentions: list[torch.Tensor]  # per block (B, heads, N, N)
    attention_grads: list[torch.Tensor | None]
    features: torch.Tensor | None  # (B, N, C) at the Grad-CAM layer
    feature_grads: torch.Tensor | None
    logits: torch.Tensor  # (B, classes)
    targets: torch.Tensor  # (B,)
    num_prefix_tokens: int
    grid: tuple[int, int]
    pool: str = "token"  # 'token' (CLS feeds the head) or 'avg' (mean of the patch tokens)
    extras: dict = field(default_factory=dict)  # e.g. 'lrp_cams': per-block attention relevance

    @property
    def batch_size(self) -> int:
        return self.logits.shape[0]


def attention_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The attention modules of a timm ViT-style model (those with an ``attn_drop`` submodule)."""
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise NotImplementedError(
            f"{type(model).__name__} has no `blocks` of global self-attention; attention-based methods "
            f"are not applicable (e.g. Swin attends in shifted windows, not over all tokens)")
    mods = [b.attn for b in blocks if hasattr(getattr(b, "attn", None), "attn_drop")]
    if len(mods) != len(blocks):
        raise NotImplementedError(f"{type(model).__name__}: not every block has a timm Attention module")
    return mods


def output_pool(model: torch.nn.Module) -> str:
    """'token' when the CLS token feeds the head, 'avg' for global average pooling."""
    pool = getattr(model, "global_pool", "token")
    if pool in ("token", "avg"):
        return "token" if pool == "token" and getattr(model, "num_prefix_tokens", 1) > 0 else "avg"
    raise NotImplementedError(f"{type(model).__name__}: global_pool={pool!r}; CLS-row methods are defined for "
                              f"'token' and 'avg' pooling only")


def token_grid(model: torch.nn.Module, images: torch.Tensor) -> tuple[int, int]:
    pe = model.patch_embed
    if hasattr(pe, "dynamic_feat_size"):
        return tuple(pe.dynamic_feat_size(images.shape[-2:]))
    return tuple(pe.grid_size)


@contextlib.contextmanager
def _unfused(attn_mods):
    saved = [getattr(m, "fused_attn", False) for m in attn_mods]
    try:
        for m in attn_mods:
            if hasattr(m, "fused_attn"):
                m.fused_attn = False
        yield
    finally:
        for m, s in zip(attn_mods, saved):
            if hasattr(m, "fused_attn"):
                m.fused_attn = s


def default_feature_layer(model: torch.nn.Module) -> str | None:
    """The Grad-CAM layer of pytorch-grad-cam's recipes: ViT ``blocks[-1].norm1``, Swin
    ``layers[-1].blocks[-1].norm1`` (NHWC features on the last stage's own grid)."""
    if hasattr(model, "blocks"):
        return "blocks.-1.norm1"
    if hasattr(model, "layers") and hasattr(model.layers[-1], "blocks"):
        return "layers.-1.blocks.-1.norm1"
    return None


def capture_trace(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None,
                  with_grads: bool = True, feature_layer: str | None = "auto",
                  layers: set[int] | None = None) -> AttentionTrace:
    """Run one forward (and, if ``with_grads``, one backward) and return the trace.

    ``targets``: class per image (LongTensor (B,)); default the predicted class.
    ``feature_layer``: dotted path of the module whose output is recorded as features (negative
    indices allowed), ``"auto"`` for :func:`default_feature_layer`, or None.  A model without global
    self-attention blocks (Swin) gives a trace without attentions, whose ``extras['no_attention']``
    says why; the attention-based methods then refuse with that reason.
    ``layers``: keep only these blocks' attentions (negative indices allowed; the others stay fused
    and are ``None`` in the trace) -- less memory when only e.g. the last block is needed.
    """
    if model.training:
        raise ValueError("capture_trace needs the model in eval mode (call model.eval())")
    extras = {}
    try:
        attn_mods = attention_blocks(model)
    except NotImplementedError as exc:
        attn_mods, extras["no_attention"] = [], str(exc)
    if feature_layer == "auto":
        feature_layer = default_feature_layer(model)
    attns: list[torch.Tensor | None] = [None] * len(attn_mods)
    feats: dict[str, torch.Tensor] = {}
    handles = []

    def keep(i):
        def hook(_mod, _inp, out):
            attns[i] = out
        return hook

    n_blocks = len(attn_mods)
    kept = set(range(n_blocks)) if layers is None else {i % n_blocks for i in layers} if n_blocks else set()
    traced = [m for i, m in enumerate(attn_mods) if i in kept]
    for i, m in enumerate(attn_mods):
        if i in kept:
            handles.append(m.attn_drop.register_forward_hook(keep(i)))
    if feature_layer:
        layer = _get_module(model, feature_layer)
        handles.append(layer.register_forward_hook(lambda _m, _i, out: feats.__setitem__("f", out)))
    try:
        with _unfused(traced), (torch.enable_grad() if with_grads else torch.no_grad()):
            logits = model(images)
            if targets is None:
                targets = logits.argmax(dim=1)
            targets = targets.to(logits.device).long()
            if any(attns[i] is None for i in kept):
                raise RuntimeError("an attention block did not run its attention dropout; cannot trace it")
            feature = feats.get("f")
            grads: list[torch.Tensor | None] = [None] * len(attns)
            fgrad = None
            order = sorted(kept)
            wrt = [attns[i] for i in order] + ([feature] if feature is not None else [])
            if with_grads and wrt:
                score = logits.gather(1, targets[:, None]).sum()
                g = torch.autograd.grad(score, wrt, allow_unused=True)
                for i, gi in zip(order, g):
                    grads[i] = gi
                fgrad = g[len(order)] if feature is not None else None
    finally:
        for h in handles:
            h.remove()
    grid = token_grid(model, images) if attn_mods else None
    if feature is not None and feature.ndim == 4:  # NHWC stage features (Swin): their own grid
        grid = tuple(feature.shape[1:3])
    return AttentionTrace(
        attentions=[None if a is None else a.detach() for a in attns],
        attention_grads=[None if g is None else g.detach() for g in grads],
        features=None if feature is None else feature.detach(),
        feature_grads=None if fgrad is None else fgrad.detach(),
        logits=logits.detach(), targets=targets.detach(),
        num_prefix_tokens=int(getattr(model, "num_prefix_tokens", 0)),
        grid=grid or (0, 0),
        pool=output_pool(model),
        extras=extras,
    )


def _get_module(model: torch.nn.Module, path: str) -> torch.nn.Module:
    mod = model
    for part in path.split("."):
        if part.lstrip("-").isdigit():
            mod = mod[int(part)]
        else:
            mod = getattr(mod, part)
    return mod
