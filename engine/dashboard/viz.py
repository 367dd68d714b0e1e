"""Heatmap rendering shared by the dashboard: one colormap, overlays and region outlines.

Maps are upsampled with :func:`engine.explain.upsample_maps` -- the same helper the metrics use --
so the picture shows exactly what was scored.  Min-max scaling happens here, per image, for
display only.
"""
from __future__ import annotations

import numpy as np

# perceptually ordered colormaps as anchor colours (all readable on light and dark themes); 'inferno' is
# the default everywhere so maps look the same on every page
_COLORMAPS = {
    "inferno": [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
                [250, 193, 39], [252, 255, 164]],
    "viridis": [[68, 1, 84], [70, 50, 126], [54, 92, 141], [39, 127, 142], [31, 161, 135], [74, 193, 109],
                [160, 218, 57], [253, 231, 37]],
    "gray": [[0, 0, 0], [255, 255, 255]],
}
COLORMAPS = tuple(_COLORMAPS)
_ANCHORS = {k: np.array(v, dtype=np.float32) / 255.0 for k, v in _COLORMAPS.items()}


def colormap(values: np.ndarray, name: str = "inferno") -> np.ndarray:
    """Values in [0, 1] (any shape) -> RGB float32 (..., 3)."""
    anchors = _ANCHORS[name]
    v = np.clip(np.nan_to_num(values, nan=0.0), 0, 1) * (len(anchors) - 1)
    lo = np.floor(v).astype(int).clip(0, len(anchors) - 2)
    t = (v - lo)[..., None]
    return anchors[lo] * (1 - t) + anchors[lo + 1] * t


def scale01(a: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(a)), float(np.max(a))
    return np.zeros_like(a, dtype=np.float32) if hi <= lo else ((a - lo) / (hi - lo)).astype(np.float32)


def upsampled(map_grid: np.ndarray, size: int) -> np.ndarray:
    import torch  # only when a map is drawn: the read layer does not load torch

    from ..explain.upsample import upsample_maps
    return upsample_maps(torch.from_numpy(np.asarray(map_grid, np.float32))[None], size)[0].numpy()


def outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a boolean mask (4-neighbourhood)."""
    m = np.asarray(mask, bool)
    pad = np.pad(m, 1, constant_values=False)
    interior = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    return m & ~interior


# outline colours of the ground-truth regions, in the order of the dataset's region list; none of them
# occurs in the inferno / viridis / gray colormaps' middle range, so an outline stays visible on a map
REGION_COLOURS = (("cyan", (0.0, 1.0, 1.0)), ("lime", (0.3, 1.0, 0.2)), ("magenta", (1.0, 0.2, 1.0)),
                  ("white", (1.0, 1.0, 1.0)), ("blue", (0.2, 0.45, 1.0)), ("red", (1.0, 0.1, 0.1)),
                  ("pink", (1.0, 0.6, 0.75)), ("teal", (0.0, 0.55, 0.55)))


def region_colours(names) -> dict[str, tuple[str, tuple[float, float, float]]]:
    """``region -> (colour name, rgb)`` by position in the dataset's region list (cycling after 8)."""
    return {n: REGION_COLOURS[k % len(REGION_COLOURS)] for k, n in enumerate(dict.fromkeys(names))}


def legend(names) -> str:
    """The outline legend as text, e.g. ``outline: cyan = lesion, lime = box_from_mask``."""
    cols = region_colours(names)
    return "outline: " + (", ".join(f"{c} = {n}" for n, (c, _) in cols.items()) if cols else "none (no regions)")


def overlay(image: np.ndarray, map_grid: np.ndarray, alpha: float = 0.5,
            outlines: dict[str, np.ndarray] | None = None, scale: int = 4, cmap: str = "inferno",
            colours: dict[str, tuple[float, float, float]] | None = None) -> np.ndarray:
    """Image (S, S, 3) in [0, 1] + token map -> uint8 RGB, enlarged ``scale`` times (nearest).

    ``outlines`` maps a region name to a boolean region drawn as its boundary in ``colours[name]``
    (default: :func:`region_colours` in the order given); ``cmap`` is one of COLORMAPS.
    """
    size = image.shape[0]
    heat = colormap(scale01(upsampled(map_grid, size)), cmap)
    out = (1 - alpha) * image + alpha * heat
    outlines = outlines or {}
    colours = colours or {n: rgb for n, (_, rgb) in region_colours(outlines).items()}
    out = out.repeat(scale, axis=0).repeat(scale, axis=1)
    for name, region in outlines.items():
        big = np.asarray(region, bool).repeat(scale, axis=0).repeat(scale, axis=1)
        out[outline(big)] = colours[name]
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def render_sample(sample, map_grid: np.ndarray | None, alpha: float = 0.5, cmap: str = "inferno",
                  scale: int = 4, regions=None) -> np.ndarray:
    """A loaded :class:`engine.data.Sample` with its map over it (no map: the image alone) and the
    outline of every ground-truth region of the image, each in its colour of :func:`region_colours`
    over ``regions`` (the dataset's region list; default: the sample's own regions)."""
    img = sample.image.permute(1, 2, 0).numpy()
    names = list(regions) if regions is not None else list(sample.regions)
    names += [n for n in sample.regions if n not in names]
    colours = {n: rgb for n, (_, rgb) in region_colours(names).items()}
    outlines = {n: sample.regions[n].numpy() for n in names if n in sample.regions}
    if map_grid is None:
        map_grid, alpha = np.zeros((1, 1), np.float32), 0.0
    return overlay(img, map_grid, alpha=alpha, outlines=outlines, scale=scale, cmap=cmap, colours=colours)
