"""Gradient x input on the patch embedding: an explanation method from outside the package.

Rule (Shrikumar et al., "Not just a black box", arXiv:1605.01713, 2016; analysed by Ancona et al., ICLR 2018)
taken at the output of the model's patch embedding instead of at the pixels: for the explained class c and
the embedding ``e`` of patch token t (before the position embedding and the blocks),

    R_t = sum over channels k of  e_tk * d logit_c / d e_tk

one value per patch, on the token grid (B, gh, gw); raw values, signed (positive: the patch pushes the logit
up).  For a model that is linear in the embedding the R_t sum to the logit minus its value at e = 0.

Call contract (kind "model", see engine/explain/registry.py): ``fn(model, images, targets, **params)`` with the
model in eval mode, normalised images (B, 3, H, W) and the explained classes (B,); returns (B, h, w).
A model without a ``patch_embed`` module is not applicable (a failure row saying so, not a crash).
"""
from __future__ import annotations

import torch

from engine.explain import register_method


@register_method("grad_x_patch_embedding", version=1, needs_grads=True, kind="model", reduced_precision=False,
                 reference="gradient x input (Shrikumar et al. 2016, arXiv:1605.01713) at the patch embedding")
def grad_x_patch_embedding(model, images, targets):
    """Gradient x input of the patch-embedding output, summed over channels: (B, gh, gw)."""
    embed = getattr(model, "patch_embed", None)
    if embed is None:
        raise NotImplementedError(f"{type(model).__name__} has no patch_embed module")
    kept: list[torch.Tensor] = []

    def keep(module, inputs, output):  # the embedding becomes a leaf we can differentiate by
        output = output.detach().requires_grad_(True)
        kept.append(output)
        return output

    handle = embed.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(images)
            chosen = logits.gather(1, targets.reshape(-1, 1).to(logits.device)).sum()  # images do not mix
            (grad,) = torch.autograd.grad(chosen, kept[0])
    finally:
        handle.remove()
    relevance = (grad * kept[0]).sum(dim=-1)  # (B, N) tokens, or (B, gh, gw) for a channels-last embedding
    if relevance.ndim == 2:
        gh, gw = embed.grid_size
        relevance = relevance.reshape(-1, gh, gw)
    return relevance.detach().float()
