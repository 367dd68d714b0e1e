"""Leaderboard: method x model (or pretraining strategy / architecture) table of one metric's mean with
95 % CI, n, ranks, significance and the random baseline; bar chart; CSV / Parquet of what is shown."""
from __future__ import annotations

import io

import numpy as np
import streamlit as st

from engine.dashboard import (
    LEADERBOARD_GROUPS,
    bar_chart,
    csv_bytes,
    dataset_labels,
    default_region,
    focus_model,
    headlines,
    leaderboard_group_column,
    leaderboard_higher_is_better,
    leaderboard_table,
    md,
    method_order,
    model_labels,
    model_order,
    near_chance_warning,
    open_page,
    ordered_regions,
    paper_table,
    pick_dataset,
    picker,
    plotly_frame,
    plotly_text,
    show_table,
    to_csv,
    to_latex,
    untrained_models,
    will_compute,
    with_guards,
)

db, opts = open_page("Leaderboard", "Leaderboard")
pick = picker("lb_")
dataset_id = pick_dataset(pick, opts)
ds_label = dataset_labels(opts)
sub = opts[opts.dataset_id == dataset_id]
metric = pick("Metric", sorted(sub.metric.unique()), "metric", prefer="pointing_game")
regions = db.dataset_regions(dataset_id)
scored_regions = sub[sub.metric == metric].region
region = pick("Region", ordered_regions(scored_regions, regions), "region",
              prefer=default_region(scored_regions, regions))
group_key = pick("Group models by", list(LEADERBOARD_GROUPS), "group", fmt=LEADERBOARD_GROUPS.get)
group, gcol = LEADERBOARD_GROUPS[group_key], leaderboard_group_column(group_key)

board, pairs = db.leaderboard_view(dataset_id, metric, region)
higher = leaderboard_higher_is_better(board)
model_rows = db.model_options()
untrained = untrained_models(model_rows)
here = sorted(board.model_id.unique())
# the page is about the selected fine-tuned model: its rows, its chart's sort and its headline come first;
# its random-weights twin is its reference
focus = (pick("Model first (its order sorts the chart)", model_order(here, None, untrained) or ["(none)"], "focus",
              prefer=focus_model(model_rows, dataset_id, here), fmt=lambda m: model_labels(here).get(m, m))
         if group_key == "model" else None)
order = model_order(here, focus, untrained)
shown = leaderboard_table(board, pairs, group_key, order if group_key == "model" else None)
if group_key == "model":
    caption = ("mean over test images with 95 % bootstrap CI; n = images scored, n degenerate = all-zero / constant / "
               "non-finite maps (not scored); rank within each model (baselines not ranked) by the mean ranked, "
               "over the n ranked images every method of the model scored (the paired tests use them too); "
               "p = Wilcoxon "
               "signed-rank vs the model's best method, Holm-adjusted over all method pairs of that model "
               "(*** p < 0.001, ** < 0.01, * < 0.05; n/a = no test stored); vs random = mean minus the random-map "
               "baseline's mean; vs random / centre map = mean paired difference to that baseline map, its "
               "Holm-adjusted p and the verdict (beats / below / n.s.)")
else:
    caption = (f"per {group}: mean of its models' mean scores, the lowest and highest model mean, models and images "
               f"scored (n, summed); rank within each {group} (baselines not ranked); paired tests are per model — "
               f"group by model to see them")
st.caption(f"{md(ds_label[dataset_id])} · metric **{md(metric)}** ({'higher' if higher else 'lower'} is better) · "
           f"region **{md(region)}** · grouped by **{group}** · {caption}")
if not shown["baseline"].any() and not will_compute(db.path, "baselines", sub.dataset.iloc[0]):
    st.caption("No baseline map in this database (run the `baseline_random` and `baseline_centre` methods to get "
               "the chance rows).")
near_chance_warning(db, dataset_id, here, focus)
if group_key == "model":
    heads = headlines(with_guards(board))
    for mid, text in sorted(heads.items(), key=lambda kv: next((k for k, m in enumerate(order)
                                                                 if kv[0].startswith(m)), len(order))):
        st.markdown(f"**{md(mid)}**: {md(text)}")
    centre = db.centre_share(dataset_id)
    if len(centre):
        st.caption("Regions covering the image centre (the centre map's prior): " + "; ".join(
            f"{md(r.region)} {r.covers_centre:.0%} of {r.images}" for r in centre.itertuples()))

st.subheader(f"Mean per method × {group}")
by_method = method_order(shown[~shown.baseline].assign(model_id=shown[gcol]), focus if group_key == "model" else None,
                         higher)
methods_sorted = by_method + sorted(set(shown.method) - set(by_method))
table = shown.pivot_table(index="method", columns=gcol, values="mean")
cols = [c for c in order if c in table.columns] + [c for c in table.columns if c not in order]
show_table(table.reindex(index=[m for m in methods_sorted if m in table.index], columns=cols), "{:.3f}")

st.subheader("Detail")
shown = shown.drop(columns=[c for c in ("vs random",) if shown[c].isna().all()])
show_table(shown, {"rank": "{:.0f}"}, hide_index=True,
           column_config={"baseline": st.column_config.CheckboxColumn("chance baseline")})
stem = f"leaderboard_{metric}_{region}_by_{gcol}"
buf = io.BytesIO()
shown.to_parquet(buf, index=False)
c1, c2, c3, c4 = st.columns(4)
c1.download_button("Download this table (CSV)", csv_bytes(shown), file_name=f"{stem}.csv",
                   mime="text/csv")
c2.download_button("Download this table (Parquet)", buf.getvalue(), file_name=f"{stem}.parquet",
                   mime="application/vnd.apache.parquet")
paper = paper_table(board)  # per model, every guard: the paper's table
c3.download_button("Paper table (CSV)", to_csv(paper), file_name=f"leaderboard_{metric}_{region}.csv",
                   mime="text/csv")
c4.download_button("Paper table (LaTeX)", to_latex(paper, metric, region, higher).encode(),
                   file_name=f"leaderboard_{metric}_{region}.tex", mime="application/x-tex")

plot = shown.copy()
if group_key == "model":
    plot = plot.assign(err_hi=plot.ci_high - plot["mean"], err_lo=plot["mean"] - plot.ci_low)
    err = {"error_y": "err_hi", "error_y_minus": "err_lo"}
    what = "mean with 95 % bootstrap CI"
else:
    plot = plot.assign(err_hi=plot.max_model_mean - plot["mean"], err_lo=plot["mean"] - plot.min_model_mean)
    err = {"error_y": "err_hi", "error_y_minus": "err_lo"}
    what = "mean of model means, bars from lowest to highest model"
n_max = int(shown["n"].max()) if len(shown) else 0
orders = {"method": [plotly_text(m) for m in methods_sorted]}
if gcol == "model_id":  # the legend names models by label, not by checkpoint hash; the selected model first
    names = model_labels(plot["model_id"])
    plot = plot.assign(model_id=plot["model_id"].map(names))
    orders[gcol] = [plotly_text(names[m]) for m in order if m in names]
fig = bar_chart(plotly_frame(plot), x="method", y="mean", color=gcol, barmode="group", **err,
                 category_orders=orders,
             text="signif" if "signif" in plot else None,
             labels={"mean": plotly_text(f"{metric} ({region}), score 0–1"), "method": "method", gcol: group},
             title=plotly_text(f"{metric} on {region} regions: {what}; n ≤ {n_max} images per bar")
                   + ("; marks: vs the model's best (Holm)" if "signif" in plot else ""))
fig.update_traces(textposition="outside", cliponaxis=False)
if np.isfinite(plot["mean"]).all() and plot["mean"].between(0, 1).all():
    fig.update_yaxes(range=[0, 1])
st.plotly_chart(fig, width="stretch")

if order:
    with st.expander("Do the metrics and the region types agree? (per model; more on the Compare page)"):
        mid = pick("Model", order, "agree_model", where=st)
        st.caption(f"Spearman correlation between metrics across methods (method means, region {md(region)} plus "
                   f"faithfulness; deletion negated so higher = better); chance baselines excluded")
        show_table(db.metric_agreement(dataset_id, mid, region), "{:.2f}")
