"""Image detail: one image under one model -- every method's map side by side, the per-image scores and
the insertion / deletion curves.  Addressed by ``?dataset=...&model=...&image=...`` (the Gallery links here)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.dashboard import (
    COLORMAPS,
    Db,
    UnsafePath,
    both_classes_block,
    cached_overlay,
    card_choice,
    default_region,
    degenerate_note,
    figure_downloads,
    focus_model,
    labelled,
    legend,
    line_chart,
    load_row_sample,
    map_array,
    md,
    method_label,
    near_chance_warning,
    open_page,
    pick_dataset,
    picker,
    plotly_frame,
    plotly_text,
    score_choice,
    show_table,
    split_choice,
    url_slider,
    will_compute,
    with_auc,
)

db, models = open_page("Image", "Image detail", Db.model_options, "explanations")
pick = picker("im_")
dataset_id = pick_dataset(pick, models)
model_id = pick("Model", sorted(models[models.dataset_id == dataset_id].model_id), "model",
                prefer=focus_model(models, dataset_id))
image_id = st.sidebar.text_input("Image id", st.query_params.get("image", ""), key="im_image").strip()
cmap = pick("Colormap", list(COLORMAPS), "cmap")
alpha = url_slider("Heatmap opacity", "alpha", "im_", 0.0, 1.0, 0.5)
if not image_id:
    st.info("Pick an image in the *Gallery* (its *details* link opens it here), or type an image id in the sidebar.")
    st.stop()
st.query_params["image"] = image_id

info, maps, scores, curves = db.image_view(dataset_id, model_id, image_id)
if info.empty:
    st.info(f"No image {md(image_id)} in dataset {md(dataset_id)}. Pick one in the *Gallery*.")
    st.stop()
row = info.iloc[0].to_dict()
classes = list(row["classes"])
if pd.isna(row["pred"]):
    verdict = "not predicted by this model"
else:
    ok = "correct ✓" if int(row["pred"]) == int(row["label"]) else "misclassified ✗"
    verdict = f"predicted **{md(classes[int(row['pred'])])}** with p = {row['confidence']:.2f} ({ok})"
st.markdown(f"**{md(image_id)}** ({md(row['split'])} split) of {md(row['dataset'])} · true class "
            f"**{md(row['label_name'])}** · {verdict} · model {md(model_id)}")
regions = db.dataset_regions(dataset_id)
st.caption(f"Heatmap: {cmap}, each map scaled to its own range for display (bright = high); {md(legend(regions.all))}")
near_chance_warning(db, dataset_id, [model_id])

try:
    sample = load_row_sample(row)
except (UnsafePath, ValueError, OSError) as exc:
    st.warning(f"The image cannot be shown: {md(exc)}")
    sample = None

if sample is not None:
    tiles = [("image", None, None)] + [(method_label(m.method, m.method_params), map_array(m._asdict()),
                                        (m.method, m.method_params, m.degenerate)) for m in maps.itertuples()]
    cols = st.columns(5)
    for k, (title, grid, which) in enumerate(tiles):
        with cols[k % 5]:
            st.image(cached_overlay(db, (dataset_id, model_id, image_id, *(which or (None, None))[:2]), row, grid,
                                    alpha, cmap, scale=3, regions=regions.all), width="stretch")
            refused = degenerate_note(which[2]) if which else None
            st.caption(md(title) if grid is None else
                       f"**{md(title)}** (explains {md(classes[int(maps.iloc[k - 1].target)])})"
                       + (f" · {refused}" if refused else ""))
if sample is not None and not maps.empty and not pd.isna(row["pred"]) and int(row["pred"]) != int(row["label"]):
    with st.expander("Predicted vs true class: a method's map for both classes, side by side, with both scores"):
        both_method = st.selectbox("Method", list(zip(maps.method, maps.method_params)), key="im_both_method",
                                   format_func=lambda mp: method_label(*mp))
        both_classes_block(db, dataset_id, model_id, *both_method, [row], classes, alpha, cmap, regions, "im_both")
if maps.empty:
    st.info("No maps were stored for this image under this model.")
elif sample is not None:
    with st.expander("Figure for a paper: this image x every method (PNG 300 dpi and SVG)"):
        options = sorted(score_choice(m, r) for m, r in set(zip(scores.metric, scores.region))) or ["(none)"]
        first = card_choice(options, None, score_choice("pointing_game", default_region(
            scores[scores.metric == "pointing_game"].region, regions)))
        choice = st.selectbox("Score under each map", options, key="im_fig_score", index=options.index(first))
        fm, fr = split_choice(choice) if choice in set(options) - {"(none)"} else (None, None)
        figure_downloads(db, dataset_id, model_id, [image_id], list(zip(maps.method, maps.method_params)), fm, fr,
                         alpha, cmap, "im_fig")

st.subheader("Scores of this image")
if scores.empty:
    st.caption("Not scored.")
else:
    scores = labelled(scores)
    scores = scores.assign(metric=[score_choice(m, r) for m, r in zip(scores["metric"], scores["region"])])
    show_table(scores.pivot_table(index="method", columns="metric", values="value"), "{:.3f}")

st.subheader("Insertion and deletion curves")
if curves.empty:
    if not will_compute(db.path, "faithfulness", row["dataset"]):
        st.caption("No faithfulness curves stored for this image (the run did not score insertion / deletion).")
else:
    for metric, g in labelled(curves).groupby("metric"):
        fig = line_chart(plotly_frame(with_auc(g)), x="x", y="y", color="method", markers=True,
                          labels={"x": "fraction of pixels " + ("inserted" if "insert" in metric else
                                                              "removed and imputed" if "road" in metric else "deleted"),
                                  "y": "probability of the explained class", "method": "method (AUC)"},
                          title=plotly_text(f"{metric.replace('_auc', '')}: this image, one curve per method"))
        fig.update_yaxes(range=[0, 1])
        st.plotly_chart(fig, width="stretch")
