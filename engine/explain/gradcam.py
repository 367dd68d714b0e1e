"""Grad-CAM on token features (Selvaraju et al., ICCV 2017), pytorch-grad-cam's recipe for ViTs.

The trace records the output of ``blocks[-1].norm1`` (the layer pytorch-grad-cam recommends for
ViTs) and its gradient.  Prefix tokens are dropped and the patch tokens reshaped to the grid, so the
embedding dimension plays the role of channels:

    w_c = mean_{i,j} dY/dA_c[i, j]          map = relu( sum_c w_c A_c )

This equals Captum's ``LayerGradCam`` on the same layer with a reshape wrapper (tested).  Swin: the
last stage's ``blocks[-1].norm1`` features (NHWC) on that stage's own grid (7 x 7 at 224 px).
"""
from __future__ import annotations

import torch

from .registry import patch_tokens_to_grid, register_method
from .trace import AttentionTrace


@register_method("gradcam", version=1, needs_grads=True, layers=lambda p: set(),
                 reference="Selvaraju et al., ICCV 2017; pytorch-grad-cam ViT recipe (target blocks[-1].norm1)")
def gradcam(trace: AttentionTrace) -> torch.Tensor:
    if trace.features is None or trace.feature_grads is None:
        raise ValueError("gradcam needs token features and their gradients in the trace (feature_layer)")
    if trace.features.ndim == 4:  # NHWC stage features (Swin)
        acts = trace.features.float().permute(0, 3, 1, 2)
        grads = trace.feature_grads.float().permute(0, 3, 1, 2)
    else:  # ViT tokens (B, N, C): prefix dropped, patches on the grid
        acts = patch_tokens_to_grid(trace.features.float(), trace)  # (B, C, gh, gw)
        grads = patch_tokens_to_grid(trace.feature_grads.float(), trace)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    return (weights * acts).sum(dim=1).clamp(min=0)
