"""Compare: the studies' comparisons -- pretraining strategies, metric agreement, boxes vs masks,
attention depth, sanity (MPRT) curves, mean insertion / deletion curves, confounders."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.dashboard import (
    CONFOUNDER_METRICS,
    SURVIVES,
    Db,
    bar_chart,
    default_region,
    depth_rows,
    focus_model,
    labelled,
    line_chart,
    md,
    model_labels,
    mprt_verdicts,
    near_chance_warning,
    open_page,
    ordered_regions,
    per_method_spearman,
    pick_dataset,
    picker,
    plotly_frame,
    plotly_text,
    region_pairs,
    scatter_chart,
    show_table,
    strategy_dataset,
    strategy_means,
    strategy_models,
    tidy_facets,
    url_slider,
    will_compute,
    with_auc,
)

db, models = open_page("Compare", "Compare", Db.model_options)
opts = db.score_options()

VIEWS = {"strategy": "Pretraining strategy", "agreement": "Metric agreement", "regions": "Boxes vs masks",
         "depth": "Attention depth", "sanity": "Sanity check (MPRT)", "faithfulness": "Insertion / deletion curves",
         "confounders": "Confounders"}


pick = picker("cmp_")
view = pick("Comparison", list(VIEWS), "view", fmt=VIEWS.get)
dataset_id = pick_dataset(pick, models, prefer=strategy_dataset(models))
dataset_name = models[models.dataset_id == dataset_id].dataset.iloc[0]
sub = opts[opts.dataset_id == dataset_id]
regions = db.dataset_regions(dataset_id)
st.subheader(VIEWS[view])


def pick_model() -> str:
    """The view's model (the best fine-tuned one unless chosen) and the near-chance guard about it."""
    model_id = pick("Model", sorted(models[models.dataset_id == dataset_id].model_id), "model",
                    prefer=focus_model(models, dataset_id))
    near_chance_warning(db, dataset_id, [model_id])
    return model_id


if view in ("strategy", "confounders"):  # views of every model: the guard about each of them
    near_chance_warning(db, dataset_id, models[models.dataset_id == dataset_id].model_id,
                        focus_model(models, dataset_id))


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
    fig = bar_chart(plotly_frame(agg.assign(up=agg.hi - agg["mean"], down=agg["mean"] - agg.lo)), x="method", y="mean",
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
        rows = -(-pairs.method.nunique() // 4)
        fig = scatter_chart(plotly_frame(pairs), x="a", y="b", facet_col="method", facet_col_wrap=4, opacity=0.5,
                             facet_row_spacing=min(0.12, 0.6 / max(rows, 1)), facet_col_spacing=0.06,
                             height=260 * rows + 160,
                         labels={"a": plotly_text(f"{a} ({region})"), "b": plotly_text(f"{b} ({region})")},
                         title=plotly_text(f"Per image: {a} vs {b}, one panel per method (n = "
                                           f"{pairs.image_id.nunique()} images)"))
        tidy_facets(fig)
        fig.update_layout(margin={"t": 110})  # the title above the facet titles, not over them
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
        fig = scatter_chart(plotly_frame(ranks.reset_index()), x=breg, y=mreg, color="method", symbol="method",
                         labels={breg: plotly_text(f"{metric} on {breg} (mean)"),
                                 mreg: plotly_text(f"{metric} on {mreg} (mean)")},
                         title=plotly_text(f"Do rankings survive {breg} vs {mreg}? {len(ranks)} methods"))
        fig.update_traces(marker={"size": 11})  # one colour and symbol per method: no labels to overprint
        st.plotly_chart(fig, width="stretch")
        show_table(ranks)

elif view == "depth":
    model_id = pick_model()
    region = pick("Region", ordered_regions(sub.region, regions), "region", prefer=default_region(sub.region, regions))
    df = depth_rows(db.depth_ablation(dataset_id, model_id, region))
    if df.empty:
        if not will_compute(db.path, "depth", dataset_name):
            st.info("No per-layer results for this model. Run a layer-wise method once per block with the parameter "
                    "`layer` (e.g. `attention` with `{\"layer\": 0}`, `{\"layer\": 1}`, …, or `gradcam_attn`) in your "
                    "experiment's methods; each becomes one point of this ablation.")
    else:
        fig = line_chart(plotly_frame(df), x="layer", y="mean", color="method", line_dash="metric", markers=True,
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
        if not will_compute(db.path, "sanity", dataset_name):
            st.info("No MPRT results for this model (an experiment runs MPRT on its fine-tuned models with "
                    "`[sanity] images = N`; `models = \"all\"` adds the random-weights ones).")
    else:
        sim = pick("Similarity", ["mean_spearman", "mean_ssim"], "sim")
        verdicts = mprt_verdicts(df, SURVIVES)
        st.caption(f"Verdict per method after the last randomisation step: fails where the mean Spearman "
                   f"correlation with the original map stays above {SURVIVES:g} (the map does not depend on the "
                   f"model's weights), passes otherwise")
        show_table(verdicts, {"final_spearman": "{:.3f}"}, hide_index=True)
        named = dict(zip(verdicts.method, verdicts.verdict))
        fig = line_chart(plotly_frame(df.assign(method=[f"{m} — {named.get(m, '')}" for m in df.method])),
                          x="step", y=sim, color="method", markers=True, hover_data=["layer", "images"],
                          labels={"step": "randomisation step (1 = head, then blocks top-down, last = embeddings)",
                                  sim: f"{sim.replace('mean_', '')} with the original map (mean)",
                                  "method": "method — verdict"},
                          title=f"MPRT: a map that stays similar after randomisation ignores the model; "
                                f"n = {int(df['images'].max())} images")
        st.plotly_chart(fig, width="stretch")
        with st.expander("Every step"):
            show_table(df.drop(columns=["method_params"]), hide_index=True)

elif view == "faithfulness":
    model_id = pick_model()
    df = labelled(db.mean_curves(dataset_id, model_id))
    if df.empty and not will_compute(db.path, "faithfulness", dataset_name):
        st.info("No insertion / deletion / ROAD curves for this model (score `insertion_auc` / `deletion_auc` / "
                "`road_morf_auc` / `road_lerf_auc`).")
    for metric, g in df.groupby("metric"):
        moved = "inserted" if "insert" in metric else "removed and imputed" if "road" in metric else "deleted"
        fig = line_chart(plotly_frame(with_auc(g)), x="x", y="y", color="method",
                          labels={"x": f"fraction of pixels {moved}",
                                  "y": "probability of the explained class (mean)",
                                  "method": "method (AUC of the mean curve)"},
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
        fig = bar_chart(plotly_frame(bars), x="method", y="mean", color="model", barmode="group",
                     facet_row="metric", labels={"mean": "mass on marker (mean share, 0–1)"},
                     title=f"Mass on the marker region; n ≤ {int(shown['n'].max())} images per bar")
        tidy_facets(fig)  # facet titles: the metric only
        fig.update_layout(margin={"t": 80})
        st.plotly_chart(fig, width="stretch")
