"""Model-parameter randomisation test (Adebayo et al., NeurIPS 2018, "Sanity checks for saliency maps").

Cascading randomisation from the top of the network down: the classifier head (with the final norms),
then each transformer block from the last to the first, then the embeddings -- the patch embedding,
**the CLS / distillation / register tokens and the positional embedding** (Quantus only re-initialises
modules that have ``reset_parameters``, which leaves a ViT's tokens and positional embedding intact).
Randomisation is cumulative; at every step each parameter tensor of the group is replaced by Gaussian
noise with that tensor's own mean and standard deviation (0.02 where the tensor is constant, e.g. a
LayerNorm weight of ones), from a seeded generator.

After each step the method is re-run for the **original** explained classes and compared per image with
the original map (both at their native grid): Spearman rank correlation of the raw values, and SSIM of
the per-image min-max scaled maps (uniform window of min(7, grid) pixels, Wang et al. 2004 constants for a
data range of 1).  A method whose maps stay similar after full randomisation (mean Spearman above
:data:`engine.common.verdicts.SURVIVES`) is flagged: its maps do not depend on what the model learned.

MPRT checks a *method* on a model, not a map against a region, so it is not in the metric registry: its
entry point is :func:`mprt` (the runner's sanity stage) and :data:`MPRT` describes it (the ``metrics``
table lists it with kind 'sanity').
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from ..explain import run_methods


@dataclass(frozen=True)
class SanityCheck:
    name: str
    version: int
    reference: str
    higher_is_better: bool = False  # similarity to the original map: lower = the map depends on the model
    kind: str = "sanity"


MPRT = SanityCheck("mprt", 1, "Adebayo et al., NeurIPS 2018, model-parameter randomisation (cascading)")


def randomisation_groups(model: torch.nn.Module) -> list[tuple[str, list[torch.nn.Parameter]]]:
    """(name, parameters) from the top of the network to the bottom."""
    groups: list[tuple[str, list]] = []
    top = [p for n in ("head", "head_dist", "fc_norm", "norm") if isinstance(getattr(model, n, None), torch.nn.Module)
           for p in getattr(model, n).parameters()]
    groups.append(("head", top))
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise NotImplementedError(f"mprt: {type(model).__name__} has no `blocks`")
    for i in range(len(blocks) - 1, -1, -1):
        groups.append((f"blocks.{i}", list(blocks[i].parameters())))
    emb = list(model.patch_embed.parameters())
    for n in ("cls_token", "dist_token", "reg_token", "pos_embed"):
        p = getattr(model, n, None)
        if isinstance(p, torch.nn.Parameter):
            emb.append(p)
    groups.append(("embeddings", emb))
    return groups


@torch.no_grad()
def _randomise(params, gen: torch.Generator) -> None:
    for p in params:
        mean = float(p.mean())
        std = float(p.std()) if p.numel() > 1 else 0.0
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
        p.copy_((mean + (std if std > 0 else 0.02) * noise).to(p.device, p.dtype))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two (h, w) maps after per-map min-max scaling to [0, 1]."""
    def scale(x):
        lo, hi = float(x.min()), float(x.max())
        return np.zeros_like(x) if hi <= lo else (x - lo) / (hi - lo)
    x = torch.from_numpy(scale(np.asarray(a, np.float64)))[None, None]
    y = torch.from_numpy(scale(np.asarray(b, np.float64)))[None, None]
    k = max(1, min(7, x.shape[-1], x.shape[-2]))
    mu_x, mu_y = F.avg_pool2d(x, k, 1), F.avg_pool2d(y, k, 1)
    sxx = F.avg_pool2d(x * x, k, 1) - mu_x ** 2
    syy = F.avg_pool2d(y * y, k, 1) - mu_y ** 2
    sxy = F.avg_pool2d(x * y, k, 1) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return float(s.mean())


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a), np.ravel(b)
    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")  # undefined for a constant map
    return float(spearmanr(a, b).statistic)


def mprt(model: torch.nn.Module, images: torch.Tensor, methods: dict[str, dict], targets: torch.Tensor | None = None,
         seed: int = 0, precision: str = "fp32") -> list[dict]:
    """Rows ``{method, step, layer, image, spearman, ssim, precision}`` for every randomisation step.

    ``precision``: of every explanation pass (the original and the randomised models alike; per method
    as :func:`engine.explain.run_methods` applies it, and each row records what it applied); the
    noise is drawn in float32 on the CPU and copied to each parameter's device."""
    model = model.eval()
    applied: dict[str, str] = {}
    base, _, targets = run_methods(model, images, list(methods), targets, methods, precision=precision,
                                   applied=applied)
    base = {k: v.detach().cpu().numpy() for k, v in base.items()}
    work = copy.deepcopy(model).eval()
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for step, (layer, params) in enumerate(randomisation_groups(work), start=1):
        _randomise(params, gen)
        maps, _, _ = run_methods(work, images, list(methods), targets, methods, precision=precision,
                                 applied=applied)
        for name, m in maps.items():
            m = m.detach().cpu().numpy()
            for i in range(m.shape[0]):
                rows.append({"method": name, "step": step, "layer": layer, "image": i,
                             "spearman": spearman(base[name][i], m[i]), "ssim": ssim(base[name][i], m[i]),
                             "precision": applied[name]})
    return rows
