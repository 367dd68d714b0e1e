"""The "predicted vs true class" block of the Gallery's misclassified view and of the Image page: per
misclassified image the map of the predicted class beside that of the true class, both scores, and the
paper figure (engine/dashboard/classes.py holds the SQL, the table and the panels)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from .classes import both_class_caption, both_class_panels, both_class_table, class_name
from .figure import render_png, render_svg
from .guard_widgets import figure_buttons
from .images import UnsafePath, load_row_sample
from .queries import map_array
from .safe import md
from .viz import render_sample
from .widgets import show_table


def both_classes_block(db, dataset_id: str, model_id: str, method: str, method_params: str, rows: list[dict],
                       classes: list[str], alpha: float, cmap: str, regions, key: str,
                       score: tuple[str, str] | None = None) -> None:
    """``rows``: image rows as the Gallery / Image page load them (for the image file); only the misclassified
    ones with a stored true-class map of ``method`` are shown.  ``score``: (metric, region) under each map."""
    ids = tuple(r["image_id"] for r in rows)
    maps = db.both_class_maps(dataset_id, model_id, method, method_params, ids)
    if maps.empty:
        st.caption("No map of the true class is stored for these images (they are correctly classified, or the "
                   "run predates maps of both classes: re-run the experiment to add them).")
        return
    scores = db.both_class_scores(dataset_id, model_id, method, method_params, ids)
    by_id = {r["image_id"]: r for r in rows}
    for m in maps.to_dict("records"):
        row = by_id.get(m["image_id"])
        try:
            sample = load_row_sample(row)
        except (UnsafePath, ValueError, OSError, TypeError) as exc:
            st.warning(f"{md(m['image_id'])}: {md(exc)}")
            continue
        st.markdown(md(both_class_caption(m["image_id"], classes, m["label"], m["pred"])))
        s = scores[scores.image_id == m["image_id"]]
        if score:
            s = s[(s.metric == score[0]) & (s.region == score[1])]
        cols = st.columns(2)
        for col, role, name in ((cols[0], "pred", "predicted"), (cols[1], "true", "true")):
            if m[f"{role}_map"] is None:
                col.caption(f"no map of the {name} class")
                continue
            grid = map_array({"map": m[f"{role}_map"], "grid_h": m[f"{role}_grid_h"], "grid_w": m[f"{role}_grid_w"]})
            col.image(np.asarray(render_sample(sample, grid, alpha, cmap, regions=regions.all)), width="stretch")
            vals = " · ".join(f"{r.metric} ({r.region}) {getattr(r, role + '_value'):.2f}"
                              for r in s.itertuples() if getattr(r, role + "_value") == getattr(r, role + "_value"))
            cls = class_name(classes, m["pred_target"] if role == "pred" else m["true_target"])
            col.caption(f"**{name} class** {md(cls)}  \n{md(vals) or 'not scored'}")
    table = both_class_table(scores, maps, classes)
    show_table(table, {c: "{:.3f}" for c in table.columns[5:]}, hide_index=True)
    if st.checkbox("Make the figure “predicted vs true class” (PNG 300 dpi and SVG)", key=f"{key}_make"):
        try:
            panels, titles = both_class_panels(db.file, dataset_id, model_id, [(method, method_params)],
                                               *(score or (None, None)), list(maps.image_id[:6]))
        except (UnsafePath, ValueError, OSError) as exc:
            st.warning(f"The figure cannot be made: {md(exc)}")
            return
        stem = f"predicted_vs_true_{model_id.split('@')[0]}_{method}".replace(":", "_")
        figure_buttons(render_png(panels, titles, alpha, cmap), render_svg(panels, titles, alpha, cmap), stem, key)
