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
                              over the window; mean over channels (all equal).  Always float32: the drop
                              is a difference of two logits, which bf16 outputs round to ~3 digits.

Memory bound (``memory_budget``, bytes; the runner passes None = :func:`default_memory_budget`: 1 GiB
on CPU, half the free memory on CUDA).  Each method pushes at most ``budget // bytes_per_row`` model
inputs through one pass, where ``bytes_per_row`` is what autograd saves for the backward pass of one
input, measured once per (model, input shape, precision) by :func:`activation_bytes` (the saved bytes
of a batch of two minus those of a batch of one, so weights are not counted).  Integrated Gradients
gets Captum's ``internal_batch_size`` from it (images are split further when one step of the batch
alone exceeds the budget), SmoothGrad ``nt_samples_batch_size``, Saliency and Occlusion chunks of
images (Occlusion ``perturbations_per_eval`` when not given).  Maps do not depend on the budget
(each image's rows are independent), except SmoothGrad's noise when its ``nt_samples`` are split
(the draws then come in several calls of the seeded generator).
"""

from __future__ import annotations

import warnings
import weakref

import torch

from .registry import register_method

# Captum warns "Input Tensor N did not already require gradients, required_grads has been set automatically"
# for every call; shown once per process (the first time), not once per unit of a run
_GRAD_WARNING = r"Input Tensor \d+ did not already require gradients"
_warned_once = False


def _warn_once() -> None:
    global _warned_once
    if not _warned_once:
        warnings.filterwarnings("once", message=_GRAD_WARNING)
        _warned_once = True

CPU_BUDGET = 1 << 30  # bytes of activations a Captum method may hold at once on CPU
_ACT_BYTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def default_memory_budget(device: torch.device | str) -> int:
    """1 GiB on CPU; half the currently free memory on CUDA."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free // 2)
    return CPU_BUDGET


def _saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return total[0]


def activation_bytes(model: torch.nn.Module, images: torch.Tensor) -> int:
    """Bytes autograd saves for the backward pass per input row of ``model`` (under the current
    autocast state), from batches of two and one; cached per model, input shape and precision."""
    key = (tuple(images.shape[1:]), images.dtype, images.device.type,
           torch.is_autocast_enabled(images.device.type) if images.device.type in ("cpu", "cuda") else False)
    cache = _ACT_BYTES.setdefault(model, {})
    if key not in cache:
        probe = images[:1].detach()
        cache[key] = max(1, _saved_bytes(model, probe.expand(2, *probe.shape[1:])) - _saved_bytes(model, probe))
    return cache[key]


def rows_per_pass(model: torch.nn.Module, images: torch.Tensor, memory_budget: int | None) -> int:
    """How many model inputs one pass may hold within ``memory_budget`` (at least 1)."""
    budget = default_memory_budget(images.device) if memory_budget is None else int(memory_budget)
    return max(1, budget // activation_bytes(model, images))


def _image_chunks(n: int, size: int):
    for lo in range(0, n, max(1, size)):
        yield slice(lo, min(n, lo + max(1, size)))


def _patch_size(model: torch.nn.Module) -> tuple[int, int]:
    ps = getattr(getattr(model, "patch_embed", None), "patch_size", None)
    if ps is None:
        raise NotImplementedError(f"{type(model).__name__} has no patch_embed.patch_size; pass window=")
    return (ps, ps) if isinstance(ps, int) else tuple(ps)


@register_method("saliency", version=1, needs_grads=True, kind="model", memory_bounded=True,
                 reference="Simonyan, Vedaldi & Zisserman 2014, via captum.attr.Saliency")
def saliency(model, images, targets, memory_budget: int | None = None) -> torch.Tensor:
    from captum.attr import Saliency
    _warn_once()
    sal, rows = Saliency(model), rows_per_pass(model, images, memory_budget)
    out = [sal.attribute(images[c], target=targets[c], abs=True).detach().amax(dim=1)
           for c in _image_chunks(images.shape[0], rows)]
    return torch.cat(out).float()


@register_method("smoothgrad", version=1, needs_grads=True, kind="model", memory_bounded=True,
                 reference="Smilkov et al. 2017, via captum.attr.NoiseTunnel(Saliency)")
def smoothgrad(model, images, targets, nt_samples: int = 16, stdevs: float = 0.15, seed: int = 0,
               memory_budget: int | None = None) -> torch.Tensor:
    from captum.attr import NoiseTunnel, Saliency
    _warn_once()
    nt = NoiseTunnel(Saliency(model))
    rows = rows_per_pass(model, images, memory_budget)
    per_call = None if rows >= nt_samples else rows  # None: every draw in one pass (as before the bound)
    out = []
    for i in range(images.shape[0]):
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            a = nt.attribute(images[i:i + 1], nt_type="smoothgrad", nt_samples=nt_samples, stdevs=stdevs,
                             target=targets[i:i + 1], abs=True, nt_samples_batch_size=per_call)
        out.append(a.detach().amax(dim=1))
    return torch.cat(out).float()


@register_method("integrated_gradients", version=1, needs_grads=True, kind="model", memory_bounded=True,
                 baseline="zero",
                 reference="Sundararajan, Taly & Yan 2017, via captum.attr.IntegratedGradients")
def integrated_gradients(model, images, targets, n_steps: int = 50, internal_batch_size: int | None = None,
                         memory_budget: int | None = None) -> torch.Tensor:
    """``internal_batch_size`` given: used as is (Captum's meaning); else from ``memory_budget``."""
    from captum.attr import IntegratedGradients
    _warn_once()
    ig = IntegratedGradients(model)
    if internal_batch_size is not None:
        chunks, ibs = [slice(0, images.shape[0])], internal_batch_size
    else:
        rows = rows_per_pass(model, images, memory_budget)
        chunks, ibs = list(_image_chunks(images.shape[0], rows)), None
    out = []
    for c in chunks:
        n = c.stop - c.start
        size = ibs if ibs is not None else max(n, rows // n * n)  # whole steps of the chunk's images
        out.append(ig.attribute(images[c], baselines=torch.zeros_like(images[c]), target=targets[c],
                                n_steps=n_steps, internal_batch_size=size).detach().sum(dim=1))
    return torch.cat(out).float()


@register_method("occlusion", version=1, needs_grads=False, kind="model", memory_bounded=True, baseline="zero",
                 reduced_precision=False,  # differences of bf16 logits are too coarse (docs/methods.md)
                 reference="Zeiler & Fergus 2014, via captum.attr.Occlusion with patch-sized windows")
def occlusion(model, images, targets, window: int | None = None, perturbations_per_eval: int | None = None,
              memory_budget: int | None = None) -> torch.Tensor:
    """``perturbations_per_eval`` (windows per forward, each over the chunk's images): given, used as
    is; else from ``memory_budget`` (with the backward-pass bound: an over-estimate without gradients)."""
    from captum.attr import Occlusion
    _warn_once()
    ph, pw = (window, window) if window else _patch_size(model)
    rows = rows_per_pass(model, images, memory_budget)
    h, w = images.shape[-2:]
    windows = ((h - ph) // ph + 1) * ((w - pw) // pw + 1)  # Captum expands inputs to ppe copies: cap it here
    occ, out = Occlusion(model), []
    for c in _image_chunks(images.shape[0], rows if perturbations_per_eval is None else images.shape[0]):
        n = c.stop - c.start
        ppe = perturbations_per_eval or min(windows, max(1, rows // n))
        with torch.no_grad():
            attr = occ.attribute(images[c], sliding_window_shapes=(images.shape[1], ph, pw),
                                 strides=(images.shape[1], ph, pw), baselines=0, target=targets[c],
                                 perturbations_per_eval=ppe)
        out.append(attr.detach().mean(dim=1))
    return torch.cat(out).float()
