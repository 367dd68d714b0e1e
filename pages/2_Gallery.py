"""Gallery: heatmap overlays with the ground-truth outline, true / predicted label, confidence and scores;
filters for class, outcome, confidence and a metric range; click-through to the image detail page."""
from __future__ import annotations

import math
from urllib.parse import urlencode

import streamlit as st

from engine.dashboard import (
    COLORMAPS,
    GALLERY_SORTS,
    OUTCOMES,
    UnsafePath,
    both_classes_block,
    cached_overlay,
    card_choice,
    card_score,
    confusion_frame,
    default_region,
    figure_downloads,
    focus_model,
    legend,
    map_array,
    md,
    method_label,
    near_chance_warning,
    open_page,
    pick_dataset,
    picker,
    requested_page,
    score_choice,
    show_table,
    split_choice,
    url_page,
    url_range,
    url_slider,
)

db, opts = open_page("Gallery", "Gallery", what="explanations")

PER_PAGE = 24
NO_FILTER = "(none)"
pick = picker("g_")


def show_misses(choice: str) -> None:
    """Preset: the pointing-game misses on the dataset's first mask region (sets the widgets before the
    rerun draws them)."""
    st.session_state["g_fmetric"] = choice
    st.session_state["g_frange"] = (0.0, 0.0)
    st.query_params["fmetric"] = choice
    st.query_params["frange"] = "0~0"
    st.query_params["page"] = "1"
    st.session_state.pop("g_page", None)


dataset_id = pick_dataset(pick, opts)
sub = opts[opts.dataset_id == dataset_id]
regions = db.dataset_regions(dataset_id)
model_id = pick("Model", sorted(sub.model_id.unique()), "model",
                prefer=focus_model(db.model_options(), dataset_id))
methods = db.method_options(dataset_id, model_id)
by_label = {method_label(m, p): (m, p) for m, p in zip(methods["method"], methods["method_params"])}
label = pick("Method", list(by_label), "method", prefer=next((k for k, (_, p) in by_label.items() if p == "{}"), None))
method, method_params = by_label[label]
outcome = pick("Predictions", list(OUTCOMES), "outcome")
classes = db.classes(dataset_id)
true_class = pick("True class", ["all", *classes], "cls")
conf = url_range("Confidence of the prediction", "conf", "g_", 0.0, 1.0)
here = sub[(sub.model_id == model_id) & (sub.method == method)]
fchoices = [NO_FILTER, *sorted(score_choice(m, r) for m, r in zip(here.metric, here.region))]
fchoice = pick("Filter on a score", fchoices, "fmetric")
metric_filter = None
if fchoice != NO_FILTER:
    lo, hi = url_range(f"{md(fchoice)} range", "frange", "g_", 0.0, 1.0)
    metric_filter = (*split_choice(fchoice), lo, hi)
misses = score_choice("pointing_game", default_region(here[here.metric == "pointing_game"].region, regions))
card_choices = fchoices[1:]
card = pick("Score on the cards", card_choices, "cscore",
            prefer=card_choice(card_choices, fchoice, misses)) if card_choices else None
st.sidebar.button("Show the pointing-game misses", on_click=show_misses, args=(misses,),
                  disabled=misses not in fchoices, help=f"filter on {md(misses)} between 0 and 0")
sort = pick("Sort", list(GALLERY_SORTS) if card else list(GALLERY_SORTS)[:3], "sort")
cmap = pick("Colormap", list(COLORMAPS), "cmap")
alpha = url_slider("Heatmap opacity", "alpha", "g_", 0.0, 1.0, 0.5)

filters = dict(method_params=method_params, label=None if true_class == "all" else classes.index(true_class),
               conf=conf, metric_filter=metric_filter)
wanted = requested_page("page", "g_")
total, rows = db.gallery_view(dataset_id, model_id, method, outcome, PER_PAGE, (wanted - 1) * PER_PAGE, sort=sort,
                               sort_score=split_choice(card) if card else None, **filters)
pages = max(1, math.ceil(total / PER_PAGE))
page = url_page("Page", "page", "g_", pages)

st.caption(f"{total} images · page {page} of {pages} · model **{md(model_id)}** · method **{md(label)}** · heatmap: "
           f"{cmap}, scaled per image for display (bright = high) · {md(legend(regions.all))} · "
           f"*details* opens all methods of one image")
near_chance_warning(db, dataset_id, [model_id])
confusion = confusion_frame(db.confusion(model_id))
if not confusion.empty:
    with st.expander(f"Confusion matrix of {md(model_id)} (test split: rows = true class, columns = predicted)"):
        show_table(confusion, "{:.0f}")
if rows.empty:
    st.info("No images match these filters — widen the confidence or score range, or choose another class.")
    st.stop()
with st.expander("Figure for a paper: the first images of this page x methods (PNG 300 dpi and SVG)"):
    fig_methods = st.multiselect("Methods", list(by_label), default=[label], key="g_fig_methods")
    fig_score = fchoice if fchoice != NO_FILTER else card_choice(fchoices[1:], None, misses)
    fm_, fr_ = split_choice(fig_score) if fig_score else (None, None)
    figure_downloads(db, dataset_id, model_id, list(rows.image_id[:6]), [by_label[k] for k in fig_methods], fm_,
                     fr_, alpha, cmap, "g_fig")

if outcome == "misclassified":  # maps of both classes (engine/dashboard/class_widgets.py)
    with st.expander("Predicted vs true class: each image's map for both classes, side by side, with both scores"):
        both_classes_block(db, dataset_id, model_id, method, method_params, rows.to_dict("records")[:8], classes,
                           alpha, cmap, regions, "g_both", tuple(card.split(" · ")) if card else None)

cols = st.columns(4)
for k, row in enumerate(rows.to_dict("records")):
    names_ = list(row["classes"])
    with cols[k % 4]:
        try:
            st.image(cached_overlay(db, (dataset_id, model_id, row["image_id"], method, method_params), row,
                                    map_array(row), alpha, cmap, regions=regions.all), width="stretch")
        except (UnsafePath, ValueError, OSError) as exc:
            st.warning(f"{md(row['image_id'])}: {md(exc)}")
            continue
        ok = "✓" if row["pred"] == row["label"] else "✗"
        # the chosen metric and region only (Image: every score); a refused map says what it was
        scores = md(card_score(row["scores"], card, row.get("degenerate")))
        st.caption(f"**{md(row['image_id'])}**  \ntrue {md(names_[row['label']])} · pred {md(names_[row['pred']])} "
                   f"{ok} (p = {row['confidence']:.2f})  \n{scores}")
        link = urlencode({"dataset": dataset_id, "model": model_id, "image": row["image_id"], "cmap": cmap,
                          "alpha": f"{alpha:g}"})
        st.markdown(f"[details of {md(row['image_id'])}](Image?{link})")
