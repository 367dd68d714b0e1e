"""Faithfulness: insertion and deletion curves (Petsiuk, Das & Saenko, BMVC 2018, RISE ``CausalMetric``).

Pixels are switched from a *start* image to a *finish* image in decreasing map order (ties broken
by raster order: a stable sort), in ``n_steps`` equal steps; after each step the model's softmax
probability of the explained class is recorded.  The AUC is the trapezoid rule over the fraction
of switched pixels in [0, 1] (RISE's equal-step rule when the steps divide the image exactly).

* ``deletion_auc``:  start = the image, finish = the *substrate*: by default zeros **in the model's
  normalised input space** (RISE's substrate: the normalisation mean colour, not black).  Lower is better.
* ``insertion_auc``: start = the substrate, by default the image blurred with RISE's kernel (11 x 11,
  sigma 5, built like RISE's ``gkern``: ``scipy.ndimage.gaussian_filter`` of a centred delta, zero padding
  in the convolution), finish = the image.  Higher is better.

``substrate`` is ``"zero"`` or ``"blur"`` for both (a parameter, so part of the score's key).  A method
whose own baseline equals the deletion substrate (Integrated Gradients and occlusion use zeros) is
favoured by it: score deletion with ``substrate = "blur"`` as well (docs/metrics.md, "Guards").

Maps must be at image resolution (B, H, W); images are the normalised model inputs.  Every step
of every image is evaluated in batches of ``batch_size`` model inputs (images x steps mixed).  The
inputs are mixed on the images' device and the probabilities stay there until the end (one copy to
the host per call).  ``precision`` (passed by the runner, not a metric parameter): ``bf16``
autocasts the forwards; the softmax is taken in float32 and the curves and AUCs are float64.
``batch_size=None``: 64 on CPU; on CUDA as many inputs as half the free GPU memory holds (by the
activation estimate of :func:`engine.explain.captum_methods.rows_per_pass`), at least 64.  The batch
size does not change the results beyond float rounding of the batched forwards.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from ..common.precision import autocast
from ..explain.captum_methods import rows_per_pass
from .registry import register_metric


@lru_cache(maxsize=4)
def rise_kernel(klen: int = 11, sigma: float = 5.0) -> torch.Tensor:
    delta = np.zeros((klen, klen))
    delta[klen // 2, klen // 2] = 1.0
    return torch.from_numpy(gaussian_filter(delta, sigma).astype(np.float32))


def rise_blur(images: torch.Tensor, klen: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Per-channel convolution with RISE's kernel, zero padding."""
    c = images.shape[1]
    k = rise_kernel(klen, sigma).to(images.device, images.dtype)
    weight = torch.zeros(c, 1, klen, klen, dtype=images.dtype, device=images.device)
    weight[:, 0] = k
    return torch.nn.functional.conv2d(images, weight, padding=klen // 2, groups=c)


SUBSTRATES = ("zero", "blur")
SUBSTRATE_DEFAULT = {"deletion_auc": "zero", "insertion_auc": "blur"}


def substrate_image(images: torch.Tensor, substrate: str) -> torch.Tensor:
    """What switched pixels become (deletion) or start from (insertion)."""
    if substrate == "zero":
        return torch.zeros_like(images)
    if substrate == "blur":
        return rise_blur(images)
    raise ValueError(f"substrate {substrate!r} is not one of {list(SUBSTRATES)}")


def step_counts(n_pixels: int, n_steps: int) -> np.ndarray:
    """Number of switched pixels after each of the ``n_steps + 1`` evaluations (0 ... all)."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    return np.array([round(i * n_pixels / n_steps) for i in range(n_steps + 1)])


def auto_batch_size(model, images: torch.Tensor, precision: str = "fp32") -> int:
    """64 on CPU; on CUDA the inputs half the free memory holds (at least 64)."""
    if images.device.type != "cuda":
        return 64
    with autocast(images.device, precision):
        return max(64, rows_per_pass(model, images[:1], None))


@torch.no_grad()
def causal_curves(model, maps: torch.Tensor, start: torch.Tensor, finish: torch.Tensor, targets: torch.Tensor,
                  n_steps: int, batch_size: int | None, precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """(fractions (S+1,), probabilities (B, S+1)) of the explained class along the path."""
    b, c, h, w = start.shape
    if maps.shape != (b, h, w):
        raise ValueError(f"maps {tuple(maps.shape)} must be (B, H, W) = {(b, h, w)} (upsample them first)")
    if not torch.isfinite(maps).all():
        raise ValueError("maps contain NaN or inf")
    dev = start.device
    batch_size = batch_size or auto_batch_size(model, start, precision)
    n_pix = h * w
    order = torch.sort(maps.flatten(1).to(dev), dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n_pix, device=dev).expand(b, n_pix))
    counts = step_counts(n_pix, n_steps)
    # jobs in (step, image) order: job k is step k // b of image k % b
    job_img = torch.arange(b, device=dev).repeat(n_steps + 1)
    job_step = torch.arange(n_steps + 1, device=dev).repeat_interleave(b)
    job_count = torch.as_tensor(counts, device=dev)[job_step]
    probs_out = torch.empty(len(job_img), dtype=torch.float32, device=dev)
    targets = targets.to(dev)
    for lo in range(0, len(job_img), batch_size):
        ii = job_img[lo:lo + batch_size]
        switched = (rank[ii] < job_count[lo:lo + batch_size, None]).view(-1, 1, h, w)
        x = torch.where(switched, finish[ii], start[ii])
        with autocast(dev, precision):
            logits = model(x)
        probs = torch.softmax(logits.float(), dim=1)
        probs_out[lo:lo + len(ii)] = probs.gather(1, targets[ii][:, None])[:, 0]
    scores = probs_out.view(n_steps + 1, b).T.double().cpu().numpy()
    return counts / n_pix, scores


def _auc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sum((y[:, 1:] + y[:, :-1]) / 2 * np.diff(x)[None, :], axis=1)


def _run(kind: str, maps, model, images, targets, n_steps: int, batch_size: int, return_curves: bool,
         precision: str = "fp32", substrate: str | None = None):
    if model is None or images is None or targets is None:
        raise ValueError(f"{kind}_auc needs model=, images= (normalised) and targets=")
    model.eval()
    maps = torch.as_tensor(maps).float()
    sub = substrate_image(images, substrate or SUBSTRATE_DEFAULT[f"{kind}_auc"])
    if kind == "deletion":
        start, finish = images, sub
    else:
        start, finish = sub, images
    x, y = causal_curves(model, maps, start, finish, torch.as_tensor(targets).long(), n_steps, batch_size, precision)
    auc = _auc(x, y)
    return (auc, x, y) if return_curves else auc


@register_metric("deletion_auc", version=1, kind="faithfulness", higher_is_better=False,
                 reference="Petsiuk, Das & Saenko, BMVC 2018 (RISE CausalMetric, mode 'del')")
def deletion_auc(maps, *, model=None, images=None, targets=None, n_steps: int = 50, batch_size: int | None = None,
                 return_curves: bool = False, precision: str = "fp32", substrate: str = "zero"):
    """AUC of the class probability while the most relevant pixels are replaced by the substrate (zeros, or
    the blurred image)."""
    return _run("deletion", maps, model, images, targets, n_steps, batch_size, return_curves, precision, substrate)


@register_metric("insertion_auc", version=1, kind="faithfulness", higher_is_better=True,
                 reference="Petsiuk, Das & Saenko, BMVC 2018 (RISE CausalMetric, mode 'ins', blurred start)")
def insertion_auc(maps, *, model=None, images=None, targets=None, n_steps: int = 50, batch_size: int | None = None,
                  return_curves: bool = False, precision: str = "fp32", substrate: str = "blur"):
    """AUC of the class probability while the most relevant pixels are inserted into the substrate (a blurred
    image, or zeros)."""
    return _run("insertion", maps, model, images, targets, n_steps, batch_size, return_curves, precision,
                substrate)
