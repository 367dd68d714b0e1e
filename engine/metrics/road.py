"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci, ICML 2022, "A Consistent and
Efficient Evaluation Strategy for Attribution Methods").

Instead of switching pixels to a fixed substrate (which leaks the removed shape to the model), the removed
pixels are filled by **noisy linear imputation**: each removed pixel is the weighted mean of its eight
neighbours (weight 1/6 for the four edge neighbours, 1/12 for the four diagonal ones; neighbours outside
the image are left out and the remaining weights are not renormalised, i.e. the pixel's own weight is the
sum of the weights that exist), solved jointly for all removed pixels as one sparse linear system per
image and channel (``scipy.sparse``, SuperLU), then Gaussian noise of standard deviation ``noise`` (in the
normalised input space, the space the model sees) is added to the imputed pixels only.

* ``road_morf_auc`` (most relevant first, lower is better): at each of the ``percentiles`` r (the percent
  of pixels removed), the pixels with ``m >= q(100 - r)`` are removed, ``q`` being ``numpy.percentile``
  (linear interpolation) of the map, compared in float64.
* ``road_lerf_auc`` (least relevant first, higher is better): the pixels with ``m <= q(r)``.

After each removal the model's softmax probability of the explained class is recorded.  The curve is
``x = [0, r_1/100, ..., r_k/100]`` (0 is the unperturbed image) and the AUC is the trapezoid rule over it
divided by ``r_k/100``: the mean probability along the curve, in [0, 1] whatever the percentiles.  A map
whose every pixel would be removed at some percentile (a constant map; the runner never scores those) has
no imputation (no known pixel): its AUC is NaN.

Noise is seeded: each (image, percentile) draws ``torch.randn`` of shape (channels, removed pixels in
raster order) from a generator seeded with ``seed``, so an image's result does not depend on its batch.
That is the shape and memory order of pytorch-grad-cam's ``NoisyLinearImputer`` draw (``randn_like`` of
its transposed solution, which is contiguous because SuperLU returns a Fortran-ordered array), so with
``torch.manual_seed(seed)`` before each of its single-image calls the two agree (``bench/road_parity.py``).
Percent removed r corresponds to pytorch-grad-cam's ``percentile = 100 - r`` for both
``ROADMostRelevantFirst`` and ``ROADLeastRelevantFirst``.

All (image, percentile) inputs are imputed on the CPU and sent to the model in mixed batches of
``batch_size`` (default 64); ``precision`` as for insertion / deletion.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import splu

from ..common.precision import autocast
from .registry import register_metric

PERCENTILES_DEFAULT: tuple[float, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)
NOISE_DEFAULT = 0.01
# (row offset, column offset, weight): Rong et al.'s neighbourhood (edges 1/6, diagonals 1/12; sum 1)
NEIGHBOURS: tuple[tuple[int, int, float], ...] = tuple(
    (dr, dc, 1 / 12 if dr and dc else 1 / 6) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc)
ROAD_METRICS = ("road_morf_auc", "road_lerf_auc")


def check_percentiles(percentiles) -> tuple[float, ...]:
    """The percentiles as floats, or ValueError (one line) when one lies outside (0, 100), they are not
    strictly increasing, or there are none."""
    vals = tuple(float(p) for p in percentiles)
    if not vals:
        raise ValueError("percentiles: at least one is needed")
    bad = [p for p in vals if not 0 < p < 100]
    if bad:
        raise ValueError(f"percentiles {list(percentiles)}: {bad[0]:g} is outside (0, 100) (percent of pixels removed)")
    if any(b <= a for a, b in zip(vals, vals[1:])):
        raise ValueError(f"percentiles {list(percentiles)}: must be strictly increasing")
    return vals


def curve_forwards(metric: str, params: dict) -> int:
    """Model forwards per image of one faithfulness curve: ROAD's percentiles + 1, else ``n_steps`` + 1."""
    if metric in ROAD_METRICS:
        return len(params.get("percentiles", PERCENTILES_DEFAULT)) + 1
    return params.get("n_steps", 50) + 1


def removed_pixels(map_: np.ndarray, percent: float, most_relevant: bool) -> np.ndarray:
    """Bool (H, W): the pixels removed at ``percent`` % (see the module docstring for the threshold rule)."""
    m = np.asarray(map_, dtype=np.float64)
    if most_relevant:
        return m >= np.percentile(m, 100 - percent)
    return m <= np.percentile(m, percent)


def impute(image: np.ndarray, removed: np.ndarray, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Noisy linear imputation of the ``removed`` pixels (bool (H, W)) of ``image`` (float (C, H, W)).

    Unknowns are the removed pixels in raster order; equation i: ``sum_j w_j x_j - (sum_j w_j) x_i = 0``
    over i's neighbours j inside the image, the known x_j moved to the right-hand side.  Raises
    ValueError when every pixel is removed (no known pixel to impute from)."""
    img = np.asarray(image, dtype=np.float32)
    c, h, w = img.shape
    flat_removed = np.asarray(removed, dtype=bool).ravel()
    idx = np.flatnonzero(flat_removed)
    n = len(idx)
    out = img.copy().reshape(c, -1)
    if n == 0:
        return out.reshape(c, h, w)
    if n == h * w:
        raise ValueError("every pixel is removed: nothing to impute from")
    var = np.full(h * w, -1, dtype=np.int64)
    var[idx] = np.arange(n)
    r, col = np.divmod(idx, w)
    src = img.reshape(c, -1).astype(np.float64)
    diag = np.zeros(n)
    rhs = np.zeros((n, c))
    rows, cols, vals = [], [], []
    for dr, dc, wt in NEIGHBOURS:
        rr, cc = r + dr, col + dc
        ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        i = np.flatnonzero(ok)
        j = rr[ok] * w + cc[ok]
        diag[i] += wt
        unknown = flat_removed[j]
        rows.append(i[unknown])
        cols.append(var[j[unknown]])
        vals.append(np.full(int(unknown.sum()), wt))
        rhs[i[~unknown]] -= wt * src[:, j[~unknown]].T
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    vals.append(-diag)
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsc()
    fill = torch.from_numpy(splu(a).solve(rhs).astype(np.float32)).t()  # (C, n)
    if noise:
        fill = fill + noise * torch.randn((c, n), generator=torch.Generator().manual_seed(int(seed)))
    out[:, idx] = fill.numpy()
    return out.reshape(c, h, w)


@torch.no_grad()
def road_curves(model, maps, images: torch.Tensor, targets, percentiles, most_relevant: bool,
                noise: float = NOISE_DEFAULT, seed: int = 0, batch_size: int | None = None,
                precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """(x (P+1,), probabilities (B, P+1)): the unperturbed image, then each percentile removed and imputed.
    Rows of images whose imputation is undefined are NaN."""
    pct = check_percentiles(percentiles)
    b, c, h, w = images.shape
    maps = torch.as_tensor(maps)
    if tuple(maps.shape) != (b, h, w):
        raise ValueError(f"maps {tuple(maps.shape)} must be (B, H, W) = {(b, h, w)} (upsample them first)")
    if not torch.isfinite(maps).all():
        raise ValueError("maps contain NaN or inf")
    dev = images.device
    maps_np = maps.detach().cpu().double().numpy()
    imgs_np = images.detach().cpu().float().numpy()
    targets = torch.as_tensor(targets).long().to(dev)
    steps = len(pct) + 1
    jobs = [(i, s) for s in range(steps) for i in range(b)]  # (image, step), step 0 = unperturbed
    probs = torch.full((b, steps), float("nan"), dtype=torch.float32, device=dev)
    batch_size = batch_size or 64
    for lo in range(0, len(jobs), batch_size):
        xs, kept = [], []
        for i, s in jobs[lo:lo + batch_size]:
            if s == 0:
                xs.append(imgs_np[i])
            else:
                removed = removed_pixels(maps_np[i], pct[s - 1], most_relevant)
                if removed.all():
                    continue  # undefined: stays NaN
                xs.append(impute(imgs_np[i], removed, noise, seed))
            kept.append((i, s))
        if not xs:
            continue
        x = torch.from_numpy(np.stack(xs)).to(dev, images.dtype)
        with autocast(dev, precision):
            logits = model(x)
        p = torch.softmax(logits.float(), dim=1)
        ii = torch.tensor([k[0] for k in kept], device=dev)
        ss = torch.tensor([k[1] for k in kept], device=dev)
        probs[ii, ss] = p.gather(1, targets[ii][:, None])[:, 0]
    x_axis = np.array([0.0, *(p / 100 for p in pct)])
    return x_axis, probs.double().cpu().numpy()


def road_auc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Trapezoid area under each row of ``y`` over ``x``, divided by the span of ``x`` (a mean probability)."""
    area = np.sum((y[:, 1:] + y[:, :-1]) / 2 * np.diff(x)[None, :], axis=1)
    return area / (x[-1] - x[0])


def _run(most_relevant: bool, maps, model, images, targets, percentiles, noise, seed, batch_size, return_curves,
         precision):
    if model is None or images is None or targets is None:
        raise ValueError("ROAD needs model=, images= (normalised) and targets=")
    model.eval()
    x, y = road_curves(model, maps, images, targets, percentiles, most_relevant, noise, seed, batch_size, precision)
    auc = road_auc(x, y)
    return (auc, x, y) if return_curves else auc


@register_metric("road_morf_auc", version=1, kind="faithfulness", higher_is_better=False,
                 reference="Rong et al., ICML 2022 (ROAD, most relevant first, noisy linear imputation)")
def road_morf_auc(maps, *, model=None, images=None, targets=None, percentiles: list[float] = PERCENTILES_DEFAULT,
                  noise: float = NOISE_DEFAULT, seed: int = 0, batch_size: int | None = None,
                  return_curves: bool = False, precision: str = "fp32"):
    """Mean probability of the explained class while the most relevant ``percentiles`` % are imputed."""
    return _run(True, maps, model, images, targets, percentiles, noise, seed, batch_size, return_curves, precision)


@register_metric("road_lerf_auc", version=1, kind="faithfulness", higher_is_better=True,
                 reference="Rong et al., ICML 2022 (ROAD, least relevant first, noisy linear imputation)")
def road_lerf_auc(maps, *, model=None, images=None, targets=None, percentiles: list[float] = PERCENTILES_DEFAULT,
                  noise: float = NOISE_DEFAULT, seed: int = 0, batch_size: int | None = None,
                  return_curves: bool = False, precision: str = "fp32"):
    """Mean probability of the explained class while the least relevant ``percentiles`` % are imputed."""
    return _run(False, maps, model, images, targets, percentiles, noise, seed, batch_size, return_curves, precision)
