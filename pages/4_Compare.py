"""Compare: the studies' comparisons -- pretraining strategies, metric agreement, boxes vs masks,
attention depth, sanity (MPRT) curves, mean insertion / deletion curves, confounders."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from engine.dashboard import (
    CONFOUNDER_METRICS,
    Db,
    best_model,
    default_region,
    depth_rows,
    labelled,
    md,
    model_labels,
    near_chance_warning,
    open_page,
    ordered_regions,
    per_method_spearman,
    plotly_frame,
    plotly_text,
    region_pairs,
    show_table,
    strategy_dataset,
    strategy_means,
    strategy_models,
    url_selectbox,
    url_slider,
)

px.defaults.color_discrete_sequence = px.colors.qualitative.Alphabet  # 26 distinct colours: one per method

db, models = open_page("Compare", "Compare", Db.model_options)
opts = db.score_options()

VIEWS = {"strategy": "Pretraining strategy", "agreement": "Metric agreement", "regions": "Boxes vs masks",
         "depth": "Attention depth", "sanity": "Sanity check (MPRT)", "faithfulness": "Insertion / deletion curves",
         "confounders": "Confounders"}


def pick(label: str, values, key: str, prefer=None, fmt=str):
    return url_selectbox(label, values, key, "cmp_", prefer=prefer, fmt=fmt)


view = pick("Comparison", list(VIEWS), "view", fmt=VIEWS.get)
names = dict(zip(models.dataset_id, models.dataset))
dataset_id = pick("Dataset", sorted(models.dataset_id.unique()), "dataset", prefer=strategy_dataset(models),
                  fmt=lambda d: f"{names[d]} ({d.split('@')[-1]})")
sub = opts[opts.dataset_id == dataset_id]
regions = db.dataset_regions(dataset_id)
st.subheader(VIEWS[view])
near_chance_warning(db, dataset_id, models[models.dataset_id == dataset_id].model_id)


def pick_model() -> str:
    return pick("Model", sorted(models[models.dataset_id == dataset_id].model_id), "model",
                prefer=best_model(models, dataset_id))


def pick_metric_region(metrics=None, prefer="pointing_game") -> tuple[str, str]:
    metric = pick("Metric", metrics or sorted(sub.metric.unique()), "metric", prefer=prefer)
    here = sub[sub.metric == metric].region
    region = pick("Region", ordered_regions(here, regions), "region", prefer=default_region(here, regions))
    return metric, region


if view == "strategy":
    metric, region = pick_metric_region()
    df = labelled(db.strategy_comparison(dataset_id, metric, region))
    agg = strategy_means(df)
    st.caption(f"{md(metric)} on {md(region)} regions: per strategy (pretraining · fine-tuning state: an untrained "
               f"random-weights model is never averaged with a fine-tuned one) the mean "
               f"of its models' mean scores; bars span the lowest to highest model; n = images summed over models")
    fig = px.bar(plotly_frame(agg.assign(up=agg.hi - agg["mean"], down=agg["mean"] - agg.lo)), x="method", y="mean",
                 color="strategy", barmode="group", error_y="up", error_y_minus="down",
                 labels={"mean": plotly_text(f"{metric} ({region}), mean score 0–1"), "method": "method"},
                 title=plotly_text(f"{metric} by pretraining strategy; n ≤ {int(agg['n'].max()) if len(agg) else 0} "
                                   f"images/bar"))
    st.plotly_chart(fig, width="stretch")
    show_table(agg.pivot_table(index="method", columns="strategy", values="mean"), "{:.3f}")
    acc = strategy_models(df)
    st.caption("Models compared: test accuracy, validation accuracy of the kept epoch, and their pretraining "
               "(steps, mean loss of the last 10 steps, DINO collapse verdict: uniform / one prototype / none)")
    st.dataframe(acc, hide_index=True, width="stretch")

elif view == "agreement":
    model_id = pick_model()
    metrics = sorted(sub.metric.unique())
    a = pick("Metric (x)", metrics, "metric_a", prefer="pointing_game")
    b = pick("Metric (y)", metrics, "metric_b", prefer="iou_top5")
    common = set(sub[sub.metric == a].region) & set(sub[sub.metric == b].region)
    region = pick("Region", ordered_regions(common, regions) or ["(none)"], "region",
                  prefer=default_region(common, regions))
    pairs = labelled(db.metric_pairs(dataset_id, model_id, region, a, b))
    if pairs.empty:
        st.info(f"No image has both {md(a)} and {md(b)} on {md(region)} regions for this model.")
    else:
        fig = px.scatter(plotly_frame(pairs), x="a", y="b", facet_col="method", facet_col_wrap=4, opacity=0.5,
                         labels={"a": plotly_text(f"{a} ({region})"), "b": plotly_text(f"{b} ({region})")},
                         title=plotly_text(f"Per image: {a} vs {b}, one panel per method (n = "
                                           f"{pairs.image_id.nunique()} images)"))
        fig.for_each_annotation(lambda t: t.update(text=t.text.split("=")[-1]))
        fig.update_layout(margin={"t": 90})  # the title above the facet titles, not over them
        st.plotly_chart(fig, width="stretch")
        st.caption(f"Spearman correlation of {md(a)} and {md(b)} across images, per method (undefined where a metric "
                   f"is constant)")
        rho = per_method_spearman(pairs.assign(method_params=""))
        show_table(rho.drop(columns=["method_params"]), {"spearman": "{:.2f}"}, hide_index=True)
    st.caption(f"Across methods: Spearman correlation between metrics of the method means (region {md(region)} plus "
               f"faithfulness; deletion negated so higher = better); chance baselines excluded")
    show_table(db.metric_agreement(dataset_id, model_id, region), "{:.2f}")

elif view == "regions":
    model_id = pick_model()
    pairs = region_pairs(sub.region, regions)
    labels = [f"{m} vs {b}" for m, b in pairs]
    pair = pick("Regions", labels or ["(none)"], "pair")
    mreg, breg = pairs[labels.index(pair)] if pairs else (None, None)
    both = sorted(set(sub[sub.region == mreg].metric) & set(sub[sub.region == breg].metric))
    metric = pick("Metric", both or ["pointing_game"], "metric", prefer="pointing_game")
    ranks, rho = (db.region_agreement(dataset_id, model_id, metric, breg, mreg) if pairs
                  else (pd.DataFrame(), float("nan")))
    if ranks.empty or breg not in ranks or mreg not in ranks:
        st.info(f"This dataset has no method scored on both a mask region and a box region (its regions: "
                f"{md(', '.join(regions.all)) or 'unknown'}).")
    else:
        st.caption(f"{md(metric)}: method means on {md(breg)} vs {md(mreg)} and their ranks (1 = best); Spearman ρ of "
                   f"the two "
                   f"rankings = {'undefined (fewer than 3 methods)' if rho != rho else f'{rho:.2f}'}")
        fig = px.scatter(plotly_frame(ranks.reset_index()), x=breg, y=mreg, text="method",
                         labels={breg: plotly_text(f"{metric} on {breg} (mean)"),
                                 mreg: plotly_text(f"{metric} on {mreg} (mean)")},
                         title=plotly_text(f"Do rankings survive {breg} vs {mreg}? {len(ranks)} methods"))
        fig.update_traces(textposition="top center")
        st.plotly_chart(fig, width="stretch")
        show_table(ranks)

elif view == "depth":
    model_id = pick_model()
    region = pick("Region", ordered_regions(sub.region, regions), "region", prefer=default_region(sub.region, regions))
    df = depth_rows(db.depth_ablation(dataset_id, model_id, region))
    if df.empty:
        st.info("No per-layer results for this model. Run a layer-wise method once per block with the parameter "
                "`layer` (e.g. `attention` with `{\"layer\": 0}`, `{\"layer\": 1}`, …, or `gradcam_attn`) in your "
                "experiment's methods; each becomes one point of this ablation.")
    else:
        fig = px.line(plotly_frame(df), x="layer", y="mean", color="method", line_dash="metric", markers=True,
                      error_y=df.ci_high - df["mean"], error_y_minus=df["mean"] - df.ci_low,
                      labels={"layer": "block (0 = first)", "mean": plotly_text(f"mean score ({region}), 0–1")},
                      title=f"Localisation per attention depth, 95 % CI; n ≤ {int(df['n'].max())} images per point")
        fig.update_xaxes(dtick=1)
        st.plotly_chart(fig, width="stretch")
        show_table(df.drop(columns=["method_params"]), hide_index=True)

elif view == "sanity":
    model_id = pick_model()
    df = labelled(db.mprt_curves(dataset_id, model_id))
    if df.empty:
        st.info("No MPRT results for this model (the demo runs it on the trained model: `python -m engine demo`).")
    else:
        sim = pick("Similarity", ["mean_spearman", "mean_ssim"], "sim")
        fig = px.line(plotly_frame(df), x="step", y=sim, color="method", markers=True, hover_data=["layer", "images"],
                      labels={"step": "randomisation step (1 = head, then blocks top-down, last = embeddings)",
                              sim: f"{sim.replace('mean_', '')} with the original map (mean)"},
                      title=f"MPRT: a map that stays similar after randomisation ignores the model; "
                            f"n = {int(df['images'].max())} images")
        st.plotly_chart(fig, width="stretch")
        show_table(df.drop(columns=["method_params"]), hide_index=True)

elif view == "faithfulness":
    model_id = pick_model()
    df = labelled(db.mean_curves(dataset_id, model_id))
    if df.empty:
        st.info("No insertion / deletion / ROAD curves for this model (score `insertion_auc` / `deletion_auc` / "
                "`road_morf_auc` / `road_lerf_auc`).")
    for metric, g in df.groupby("metric"):
        fig = px.line(plotly_frame(g), x="x", y="y", color="method",
                      labels={"x": "fraction of pixels " + ("inserted" if "insert" in metric else
                                                            "removed and imputed" if "road" in metric else "deleted"),
                              "y": "probability of the explained class (mean)"},
                      title=plotly_text(f"{metric.replace('_auc', '')}: mean over n = {int(g['images'].max())} "
                                        f"images"))
        fig.update_yaxes(range=[0, 1])
        st.plotly_chart(fig, width="stretch")

else:  # confounders
    threshold = url_slider("Flag at ≥ this many times the random baseline's share", "threshold", "cmp_", 0.0, 20.0,
                           3.0)
    df = db.confounders(threshold)
    if df.empty:
        st.info(f"No scores on a region named `marker` ({' / '.join(CONFOUNDER_METRICS)}). A confounded dataset "
                f"annotates its spurious cue (e.g. a text label) as a mask region called `marker`; the demo's "
                f"confounded variant does.")
    else:
        df = labelled(df)
        n_flag = int(df.flagged.sum())
        st.caption(f"Share of the map's mass on the `marker` region (mean over images; the random-map baseline for "
                   f"reference: about the marker's area share). {n_flag} model × method pairs reach {threshold:g} × "
                   f"that baseline: their maps look at the cue.")
        shown = df.drop(columns=["method_params"]).round(3)
        st.dataframe(shown, hide_index=True, width="stretch",
                     column_config={"flagged": st.column_config.CheckboxColumn("looks at the marker")})
        bars = pd.DataFrame(shown).assign(model=lambda f: f["model_id"].map(model_labels(f["model_id"])))
        fig = px.bar(plotly_frame(bars), x="method", y="mean", color="model", barmode="group",
                     facet_row="metric", labels={"mean": "mass on marker (mean share, 0–1)"},
                     title=f"Mass on the marker region; n ≤ {int(shown['n'].max())} images per bar")
        fig.for_each_annotation(lambda t: t.update(text=t.text.split("=")[-1]))  # facet titles: the metric only
        fig.update_layout(margin={"t": 80})
        st.plotly_chart(fig, width="stretch")
