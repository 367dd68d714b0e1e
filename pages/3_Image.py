"""Image detail: one image under one model -- every method's map side by side, the per-image scores and
the insertion / deletion curves.  Addressed by ``?dataset=...&model=...&image=...`` (the Gallery links here)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from engine.dashboard import (
    COLORMAPS,
    Db,
    UnsafePath,
    best_model,
    labelled,
    legend,
    load_row_sample,
    map_array,
    method_label,
    open_page,
    render_sample,
    show_table,
    spec_regions,
    url_selectbox,
    url_slider,
)

px.defaults.color_discrete_sequence = px.colors.qualitative.Alphabet  # 26 distinct colours: one per method

db, models = open_page("Image", "Image detail", Db.model_options, "explanations")


def pick(label: str, values, key: str, fmt=str):
    return url_selectbox(label, values, key, "im_", fmt=fmt)


names = dict(zip(models.dataset_id, models.dataset))
dataset_id = pick("Dataset", sorted(models.dataset_id.unique()), "dataset",
                  lambda d: f"{names[d]} ({d.split('@')[-1]})")
model_id = url_selectbox("Model", sorted(models[models.dataset_id == dataset_id].model_id), "model", "im_",
                         prefer=best_model(models, dataset_id))
image_id = st.sidebar.text_input("Image id", st.query_params.get("image", ""), key="im_image").strip()
cmap = pick("Colormap", list(COLORMAPS), "cmap")
alpha = url_slider("Heatmap opacity", "alpha", "im_", 0.0, 1.0, 0.5)
if not image_id:
    st.info("Pick an image in the *Gallery* (its *details* link opens it here), or type an image id in the sidebar.")
    st.stop()
st.query_params["image"] = image_id

info, maps, scores, curves = db.image_view(dataset_id, model_id, image_id)
if info.empty:
    st.info(f"No image `{image_id}` in dataset `{dataset_id}`. Pick one in the *Gallery*.")
    st.stop()
row = info.iloc[0].to_dict()
classes = list(row["classes"])
if pd.isna(row["pred"]):
    verdict = "not predicted by this model"
else:
    ok = "correct ✓" if int(row["pred"]) == int(row["label"]) else "misclassified ✗"
    verdict = f"predicted **{classes[int(row['pred'])]}** with p = {row['confidence']:.2f} ({ok})"
st.markdown(f"**{image_id}** ({row['split']} split) of {row['dataset']} · true class **{row['label_name']}** · "
            f"{verdict} · model `{model_id}`")
regions = spec_regions(row["spec"])
st.caption(f"Heatmap: {cmap}, each map scaled to its own range for display (bright = high); {legend(regions.all)}")

try:
    sample = load_row_sample(row)
except (UnsafePath, ValueError, OSError) as exc:
    st.warning(f"The image cannot be shown: {exc}")
    sample = None

if sample is not None:
    tiles = [("image", None)] + [(method_label(m.method, m.method_params), map_array(m._asdict()))
                                 for m in maps.itertuples()]
    cols = st.columns(5)
    for k, (title, grid) in enumerate(tiles):
        with cols[k % 5]:
            st.image(np.asarray(render_sample(sample, grid, alpha, cmap, scale=3, regions=regions.all)),
                     width="stretch")
            st.caption(title if grid is None else f"**{title}** (explains {classes[int(maps.iloc[k - 1].target)]})")
if maps.empty:
    st.info("No maps were stored for this image under this model.")

st.subheader("Scores of this image")
if scores.empty:
    st.caption("Not scored.")
else:
    scores = labelled(scores).assign(metric=scores["metric"] + " · " + scores["region"])
    show_table(scores.pivot_table(index="method", columns="metric", values="value"), "{:.3f}")

st.subheader("Insertion and deletion curves")
if curves.empty:
    st.caption("No faithfulness curves stored for this image (the run did not score insertion / deletion).")
else:
    for metric, g in labelled(curves).groupby("metric"):
        fig = px.line(g, x="x", y="y", color="method", markers=True,
                      labels={"x": "fraction of pixels " + ("inserted" if "insert" in metric else "deleted"),
                              "y": "probability of the explained class"},
                      title=f"{metric.replace('_auc', '')}: this image, one curve per method")
        fig.update_yaxes(range=[0, 1])
        st.plotly_chart(fig, width="stretch")
