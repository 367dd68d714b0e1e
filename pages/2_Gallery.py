"""Gallery: heatmap overlays with the ground-truth outline, true / predicted label and scores."""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

from engine.store import queries
from engine.store.cache import call, db_state
from engine.store.images import UnsafePath, load_stored_sample
from engine.viz import overlay
from engine.widgets import url_selectbox

st.set_page_config(page_title="Gallery", layout="wide")
st.title("Gallery")

path, mtime = db_state()
if mtime is None:
    st.info(f"No usable results database at `{path}`. Create one with `.venv/bin/python -m engine demo`.")
    st.stop()

opts = call("score_options", path, mtime)
if opts.empty:
    st.info("The database holds no explanations yet. Run `.venv/bin/python -m engine demo` to add some.")
    st.stop()


def pick(label: str, values, key: str, fmt=str):
    return url_selectbox(label, values, key, "g_", fmt=fmt)


names = dict(zip(opts.dataset_id, opts.dataset))
dataset_id = pick("Dataset", sorted(opts.dataset_id.unique()), "dataset", lambda d: f"{names[d]} ({d.split('@')[1]})")
sub = opts[opts.dataset_id == dataset_id]
model_id = pick("Model", sorted(sub.model_id.unique()), "model")
method = pick("Method", sorted(sub[sub.model_id == model_id].method.unique()), "method")
outcome = pick("Predictions", ["all", "correct", "misclassified"], "outcome")
alpha = st.sidebar.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05)
per_page = 24
total = call("gallery_count", path, mtime, dataset_id, model_id, method, outcome)
pages = max(1, math.ceil(total / per_page))
page = st.sidebar.number_input("Page", min_value=1, max_value=pages, value=1, step=1)

st.caption(f"{total} images · model **{model_id}** · method **{method}** · heatmap: inferno, scaled per image "
           f"for display · outline: cyan = mask, lime = box")
rows = call("gallery", path, mtime, dataset_id, model_id, method, outcome, per_page, (page - 1) * per_page)
if rows.empty:
    st.info("No images match these filters.")
    st.stop()

cols = st.columns(4)
for k, row in enumerate(rows.to_dict("records")):
    classes = list(row["classes"])
    try:
        sample = load_stored_sample(row["root"], row["spec"], row["image_id"], row["label"], row["path"],
                                    row["mask_path"], row["boxes_path"])
    except (UnsafePath, ValueError, OSError) as exc:
        cols[k % 4].warning(f"{row['image_id']}: {exc}")
        continue
    img = sample.image.permute(1, 2, 0).numpy()
    outlines = {}
    if "mask" in sample.regions:
        outlines["cyan"] = sample.regions["mask"].numpy()
    if "box" in sample.regions:
        outlines["lime"] = sample.regions["box"].numpy()
    pic = overlay(img, queries.map_array(row), alpha=alpha, outlines=outlines, scale=4)
    ok = "✓" if row["pred"] == row["label"] else "✗"
    scores = "  \n".join(row["scores"]) if row["scores"] is not None and len(row["scores"]) else "not scored"
    caption = (f"**{row['image_id']}**  \ntrue {classes[row['label']]} · pred {classes[row['pred']]} {ok} "
               f"(p = {row['confidence']:.2f})  \n{scores}")
    with cols[k % 4]:
        st.image(np.asarray(pic), width="stretch")
        st.caption(caption)
