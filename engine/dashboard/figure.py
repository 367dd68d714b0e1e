"""A figure for the paper: N images x M methods -- each image with its ground-truth outline, then one
heatmap overlay per method with its score -- as PNG (300 dpi) and SVG (vector text, embedded tiles).

:func:`render_png` / :func:`render_svg` are pure (same panels, same bytes; PIL only, no matplotlib);
:func:`figure_panels` gathers the panels from a results database the way the Image page shows them
(same loader, same upsampling, the outline of every region in its colour of ``viz.region_colours``).
"""
from __future__ import annotations

import base64
import io
import textwrap
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..common.labels import method_label
from . import queries
from .images import load_row_sample
from .viz import legend, overlay, region_colours

DPI = 300
TILE_PX = 320          # about 27 mm at 300 dpi
PAD = 12
HEAD_PX = 56
FONT_PX = 26


@dataclass
class Panel:
    """One image row: the image (S, S, 3) in [0, 1], its ground-truth regions {name: mask} (outlined in the
    colours of ``viz.region_colours`` over ``region_order``, default their own order), and per method a
    token map (or None when the method has none for this image) and a score text.  ``caption``: lines
    split by newlines; the first (the image id) is shortened from the left, the others are kept whole."""
    image_id: str
    image: np.ndarray
    outlines: dict = field(default_factory=dict)
    maps: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    caption: str = ""
    region_order: tuple = ()
    title: str = ""   # a line above the row across its full width, wrapped, never clipped (e.g. both class names)


def _tile(p: Panel, grid, alpha: float, cmap: str, tile_px: int) -> Image.Image:
    size = p.image.shape[0]
    scale = max(1, -(-tile_px // size))
    names = [*p.region_order, *(n for n in p.outlines if n not in p.region_order)]
    colours = {n: rgb for n, (_, rgb) in region_colours(names).items()}
    arr = overlay(p.image, np.zeros((1, 1), np.float32) if grid is None else grid, alpha=0.0 if grid is None
                  else alpha, outlines=p.outlines, scale=scale, cmap=cmap, colours=colours)
    return Image.fromarray(arr).resize((tile_px, tile_px), Image.NEAREST)


def _png(img: Image.Image, dpi: int | None = None) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=9, **({"dpi": (dpi, dpi)} if dpi else {}))
    return buf.getvalue()


def _chars(tile_px: int) -> int:
    """Characters that fit under a tile (about 0.55 em per character)."""
    return max(4, int(tile_px / (0.55 * FONT_PX)))


def _wrap(text: str, n: int) -> list[str]:
    """``text`` in lines of at most ``n`` characters, every character kept."""
    return textwrap.wrap(str(text), n, break_long_words=True, break_on_hyphens=False) or [""]


def _left(text: str, n: int) -> str:
    """``text`` shortened from the left (a long image id keeps its distinctive end)."""
    text = str(text)
    return text if len(text) <= n else "…" + text[len(text) - n + 1:]


def _caption(p: Panel, tile_px: int) -> list[str]:
    """The image's caption lines: its id (shortened from the left), then every further line in full."""
    first, *rest = (p.caption or p.image_id).split("\n")
    n = _chars(tile_px)
    return [_left(first, n), *(line for r in rest for line in _wrap(r, n))]


def _heads(methods: list[str], tile_px: int) -> list[list[str]]:
    return [_wrap(t, _chars(tile_px)) for t in ["image", *methods]]


def _layout(panels: list[Panel], methods: list[str], tile_px: int):
    cols = 1 + len(methods)
    lines = max(2, *(len(_caption(p, tile_px)) for p in panels))
    width = PAD + cols * (tile_px + PAD)
    title_h = max(len(_title_lines(p.title, width)) for p in panels) * (FONT_PX + PAD // 2)
    row_h = title_h + tile_px + PAD + lines * FONT_PX + PAD
    head_h = max(HEAD_PX, PAD + max(len(h) for h in _heads(methods, tile_px)) * FONT_PX + PAD)
    height = head_h + len(panels) * row_h + FONT_PX + PAD  # the outline legend at the bottom
    return cols, row_h, width, height, head_h, title_h


def _title_lines(title: str, width: int) -> list[str]:
    """A row title wrapped at word boundaries to the figure's width (about 0.55 em per character)."""
    return textwrap.wrap(title, max(8, int((width - 2 * PAD) / (0.55 * FONT_PX)))) if title else []


def _legend(panels: list[Panel]) -> str:
    names = [*panels[0].region_order]
    for p in panels:
        names += [n for n in p.outlines if n not in names]
    return legend(names)


def _check(panels: list[Panel], methods: list[str]) -> None:
    if not panels:
        raise ValueError("a figure needs at least one image")
    for p in panels:
        if len(p.maps) != len(methods) or len(p.scores) != len(methods):
            raise ValueError(f"image {p.image_id}: {len(p.maps)} maps / {len(p.scores)} scores for "
                             f"{len(methods)} methods")


def render_png(panels: list[Panel], methods: list[str], alpha: float = 0.5, cmap: str = "inferno",
               tile_px: int = TILE_PX) -> bytes:
    """The figure as PNG bytes at ``DPI`` dots per inch."""
    _check(panels, methods)
    cols, row_h, width, height, head_h, title_h = _layout(panels, methods, tile_px)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=FONT_PX)
    for c, head in enumerate(_heads(methods, tile_px)):
        for k, line in enumerate(head):
            draw.text((PAD + c * (tile_px + PAD), PAD + k * FONT_PX), line, fill="black", font=font)
    for r, p in enumerate(panels):
        y = head_h + r * row_h
        for line in _title_lines(p.title, width):
            draw.text((PAD, y), line, fill="black", font=font)
            y += FONT_PX + PAD // 2
        y = head_h + r * row_h + title_h
        for c, grid in enumerate([None, *p.maps]):
            x = PAD + c * (tile_px + PAD)
            canvas.paste(_tile(p, grid, alpha, cmap, tile_px), (x, y))
            lines = _caption(p, tile_px) if c == 0 else [_fit(p.scores[c - 1], tile_px)]
            for k, line in enumerate(lines):
                draw.text((x, y + tile_px + PAD // 2 + k * FONT_PX), line, fill="black", font=font)
    draw.text((PAD, height - FONT_PX - PAD), _legend(panels), fill="black", font=font)
    return _png(canvas, DPI)


def _fit(text: str, tile_px: int) -> str:
    """Clip a label to what fits under a tile (about 0.55 em per character)."""
    n = _chars(tile_px)
    return text if len(text) <= n else text[:n - 1] + "…"


def _xml(text: str) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def render_svg(panels: list[Panel], methods: list[str], alpha: float = 0.5, cmap: str = "inferno",
               tile_px: int = TILE_PX) -> str:
    """The figure as SVG text: tiles embedded as PNG, every label and score as vector text."""
    _check(panels, methods)
    cols, row_h, width, height, head_h, title_h = _layout(panels, methods, tile_px)
    mm = 25.4 / DPI
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * mm:.2f}mm" height="{height * mm:.2f}mm" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{FONT_PX}">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for c, head in enumerate(_heads(methods, tile_px)):
        out += [f'<text x="{PAD + c * (tile_px + PAD)}" y="{PAD + (k + 1) * FONT_PX}">{_xml(line)}</text>'
                for k, line in enumerate(head)]
    for r, p in enumerate(panels):
        y = head_h + r * row_h
        for line in _title_lines(p.title, width):
            out.append(f'<text x="{PAD}" y="{y + FONT_PX}">{_xml(line)}</text>')
            y += FONT_PX + PAD // 2
        y = head_h + r * row_h + title_h
        for c, grid in enumerate([None, *p.maps]):
            x = PAD + c * (tile_px + PAD)
            data = base64.b64encode(_png(_tile(p, grid, alpha, cmap, tile_px))).decode("ascii")
            out.append(f'<image x="{x}" y="{y}" width="{tile_px}" height="{tile_px}" '
                       f'href="data:image/png;base64,{data}"/>')
            lines = _caption(p, tile_px) if c == 0 else [_fit(p.scores[c - 1], tile_px)]
            out += [f'<text x="{x}" y="{y + tile_px + PAD // 2 + (k + 1) * FONT_PX}">{_xml(line)}</text>'
                    for k, line in enumerate(lines)]
    out.append(f'<text x="{PAD}" y="{height - PAD}">{_xml(_legend(panels))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# -- from a results database -----------------------------------------------------------------------

def image_as_scored(path, dataset_id: str, model_id: str, image_id: str):
    """(the image's row, its sample re-read from the dataset root, the dataset's region order, the outline of
    each region, its maps, its scores) under one model: what every figure row is drawn from."""
    info, maps, scores, _ = queries.image_view(path, dataset_id, model_id, image_id)
    if info.empty:
        raise ValueError(f"no image {image_id!r} in dataset {dataset_id!r}")
    row = info.iloc[0].to_dict()
    sample = load_row_sample(row)
    order = queries.dataset_regions(path, dataset_id).all
    outlines = {n: sample.regions[n].numpy() for n in [*order, *sample.regions] if n in sample.regions}
    return row, sample, order, outlines, maps, scores


def figure_panels(path, dataset_id: str, model_id: str, image_ids: list[str], methods: list[tuple[str, str]],
                  metric: str | None = "pointing_game", region: str | None = "mask") -> list[Panel]:
    """Panels of ``image_ids`` x ``methods`` ((method, canonical params)) with their stored maps and the
    score of ``metric`` on ``region`` ('none' for faithfulness); images re-read from the dataset root."""
    panels = []
    for image_id in image_ids:
        row, sample, order, outlines, maps, scores = image_as_scored(path, dataset_id, model_id, image_id)
        grids, texts = [], []
        for method, params in methods:
            m = maps[(maps.method == method) & (maps.method_params == params)]
            grids.append(None if m.empty else queries.map_array(m.iloc[0].to_dict()))
            s = scores[(scores.method == method) & (scores.method_params == params) & (scores.metric == metric)
                       & (scores.region == region)] if metric else scores.iloc[0:0]
            if m.empty:
                texts.append("no map")
            elif s.empty:
                texts.append(f"{metric}: not scored" if metric else "")
            else:
                v = s.value.iloc[0]
                texts.append(f"{metric} {'n/a' if v is None or v != v else f'{v:.2f}'}")
        classes = list(row["classes"])
        pred = "–" if row["pred"] is None or row["pred"] != row["pred"] else classes[int(row["pred"])]
        panels.append(Panel(image_id, sample.image.permute(1, 2, 0).numpy(), outlines, grids, texts,
                            caption=f"{image_id}\ntrue: {row['label_name']}\npred: {pred}", region_order=order))
    return panels


def method_titles(methods: list[tuple[str, str]]) -> list[str]:
    return [method_label(m, p) for m, p in methods]
