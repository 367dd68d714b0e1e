"""Input-attribution baselines through Captum itself (Kokhlikyan et al. 2020).

These methods need the model, not the trace (``kind="model"``): ``fn(model, images, targets,
**params) -> (B, H, W)`` **on the input pixel grid** (not pooled to tokens), explaining the
pre-softmax logit of ``targets`` like the trace methods.  Channel reduction, stated per method:

* ``saliency``             -- |d logit / d x|, max over channels (Simonyan et al. 2014).
* ``smoothgrad``           -- NoiseTunnel(Saliency) with Gaussian noise of std ``stdevs`` (in
                              normalised-input units), ``nt_samples`` draws, max over channels
                              (Smilkov et al. 2017).  The noise is seeded per image, so an image's map
                              does not depend on the other images of its batch.
* ``integrated_gradients`` -- Sundararajan et al. 2017, baseline 0 in normalised-input space (the
                              normalisation mean colour), ``n_steps`` Gauss-Legendre steps (Captum's
                              default), summed over channels (signed).
* ``occlusion``            -- Zeiler & Fergus 2014: a patch-sized window (the model's patch size) slid
                              with a patch-sized stride, replaced by 0; the drop of the logit is spread
                              over the window; mean over channels (all equal).
"""
from __future__ import annotations

import torch

from .registry import register_method


def _patch_size(model: torch.nn.Module) -> tuple[int, int]:
    ps = getattr(getattr(model, "patch_embed", None), "patch_size", None)
    if ps is None:
        raise NotImplementedError(f"{type(model).__name__} has no patch_embed.patch_size; pass window=")
    return (ps, ps) if isinstance(ps, int) else tuple(ps)


@register_method("saliency", version=1, needs_grads=True, kind="model",
                 reference="Simonyan, Vedaldi & Zisserman 2014, via captum.attr.Saliency")
def saliency(model, images, targets) -> torch.Tensor:
    from captum.attr import Saliency
    attr = Saliency(model).attribute(images, target=targets, abs=True)
    return attr.detach().amax(dim=1).float()


@register_method("smoothgrad", version=1, needs_grads=True, kind="model",
                 reference="Smilkov et al. 2017, via captum.attr.NoiseTunnel(Saliency)")
def smoothgrad(model, images, targets, nt_samples: int = 16, stdevs: float = 0.15, seed: int = 0) -> torch.Tensor:
    from captum.attr import NoiseTunnel, Saliency
    nt = NoiseTunnel(Saliency(model))
    out = []
    for i in range(images.shape[0]):
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            a = nt.attribute(images[i:i + 1], nt_type="smoothgrad", nt_samples=nt_samples, stdevs=stdevs,
                             target=targets[i:i + 1], abs=True)
        out.append(a.detach().amax(dim=1))
    return torch.cat(out).float()


@register_method("integrated_gradients", version=1, needs_grads=True, kind="model", baseline="zero",
                 reference="Sundararajan, Taly & Yan 2017, via captum.attr.IntegratedGradients")
def integrated_gradients(model, images, targets, n_steps: int = 50, internal_batch_size: int | None = None
                         ) -> torch.Tensor:
    from captum.attr import IntegratedGradients
    attr = IntegratedGradients(model).attribute(images, baselines=torch.zeros_like(images), target=targets,
                                                n_steps=n_steps, internal_batch_size=internal_batch_size)
    return attr.detach().sum(dim=1).float()


@register_method("occlusion", version=1, needs_grads=False, kind="model", baseline="zero",
                 reference="Zeiler & Fergus 2014, via captum.attr.Occlusion with patch-sized windows")
def occlusion(model, images, targets, window: int | None = None, perturbations_per_eval: int = 16) -> torch.Tensor:
    from captum.attr import Occlusion
    ph, pw = (window, window) if window else _patch_size(model)
    with torch.no_grad():
        attr = Occlusion(model).attribute(images, sliding_window_shapes=(images.shape[1], ph, pw),
                                          strides=(images.shape[1], ph, pw), baselines=0, target=targets,
                                          perturbations_per_eval=perturbations_per_eval)
    return attr.detach().mean(dim=1).float()
