"""Streamlit pieces the pages share for the guards and the paper exports: the near-chance warning and the
figure download buttons (the logic is in :mod:`.guards` and :mod:`.figure`)."""
from __future__ import annotations

import streamlit as st

from .figure import figure_panels, method_titles, render_png, render_svg
from .images import UnsafePath
from .safe import md


def near_chance_warning(db, dataset_id: str, model_ids) -> None:
    """A warning per shown model whose balanced accuracy is near chance (docs/metrics.md, "Guards");
    ``db``: the page's :class:`~engine.dashboard.cache.Db`."""
    for line in db.near_chance_lines(dataset_id, tuple(sorted(model_ids))):
        st.warning(md(line), icon="⚠️")


def figure_downloads(db, dataset_id: str, model_id: str, image_ids: list[str], methods: list[tuple[str, str]],
                     metric: str | None, region: str | None, alpha: float, cmap: str, key: str) -> None:
    """PNG (300 dpi) and SVG of ``image_ids`` x ``methods`` with one score each, built when asked for."""
    if not st.checkbox(f"Make a figure of {len(image_ids)} image(s) x {len(methods)} method(s)", key=f"{key}_make"):
        return
    try:
        panels = figure_panels(db.file, dataset_id, model_id, image_ids, methods, metric, region)
    except (UnsafePath, ValueError, OSError) as exc:
        st.warning(f"The figure cannot be made: {md(exc)}")
        return
    titles = method_titles(methods)
    stem = f"figure_{model_id.split('@')[0]}_{len(image_ids)}x{len(methods)}".replace(":", "_")
    figure_buttons(render_png(panels, titles, alpha, cmap), render_svg(panels, titles, alpha, cmap), stem, key)


def figure_buttons(png: bytes, svg: str, stem: str, key: str) -> None:
    """The PNG and SVG download buttons of a rendered figure, side by side."""
    c1, c2 = st.columns(2)
    c1.download_button("Download the figure (PNG, 300 dpi)", png, file_name=f"{stem}.png", mime="image/png",
                       key=f"{key}_png")
    c2.download_button("Download the figure (SVG)", svg.encode("utf-8"), file_name=f"{stem}.svg",
                       mime="image/svg+xml", key=f"{key}_svg")
