"""Streamlit pieces the pages share for the guards and the paper exports: the near-chance warning, the
shortcut check and the figure download buttons (the logic is in :mod:`.guards` and :mod:`.figure`)."""
from __future__ import annotations

import streamlit as st

from .figure import figure_panels, method_titles, render_png, render_svg
from .focus import chance_lines, untrained_models
from .images import UnsafePath
from .safe import md


def near_chance_warning(db, dataset_id: str, model_ids, focus: str | None = None) -> None:
    """The near-chance guard (docs/metrics.md, "Guards") about the shown models (a page about one model
    passes only that one), ``focus`` first: a warning for a fine-tuned model whose balanced accuracy is near
    chance, one short note for a random-weights twin (at chance by design); ``db``: the page's
    :class:`~engine.dashboard.cache.Db`."""
    untrained = untrained_models(db.model_options())
    warnings, notes = chance_lines(db.model_quality(dataset_id), model_ids, focus, untrained)
    for line in warnings:
        st.warning(md(line), icon="⚠️")
    if notes:
        st.caption(" ".join(md(n) for n in notes))
    shortcut_notes(db, dataset_id, model_ids)


def shortcut_notes(db, dataset_id: str, model_ids=None) -> None:
    """The dataset's shortcut check (metadata alone predicting the label; docs/datasets.md): a warning with
    each shown model's agreement with the metadata rule where flagged, else one caption."""
    ids = None if model_ids is None else tuple(sorted(model_ids))
    for level, line in db.shortcut_lines(dataset_id, ids):
        if level == "warning":
            st.warning(md(line), icon="⚠️")
        else:
            st.caption(md(line))


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
