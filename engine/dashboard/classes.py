"""Misclassified images, both classes: the map of the predicted class (``explanations`` / ``scores``) beside
the map of the true class (``target_maps`` / ``target_scores``, role 'true'), with both scores.

The SQL (parameterised, a read-only cursor of the shared reader per call) and the pure table behind the
Gallery's misclassified view, the Image page and the "predicted vs true class" figure.
"""
from __future__ import annotations

import pandas as pd

from . import queries
from .figure import Panel, image_as_scored, method_titles
from .reader import cursor


def _query(path, sql: str, params: dict) -> pd.DataFrame:
    with cursor(path) as con:
        return con.execute(sql, params).df()


def both_class_maps(path, dataset_id: str, model_id: str, method: str, method_params: str = "{}",
                    image_ids: list[str] | None = None, limit: int = 200) -> pd.DataFrame:
    """Per misclassified image that has a true-class map of ``method``: label, prediction, both explained
    classes and both maps (``pred_map`` / ``true_map`` with their grids), newest method version."""
    return _query(path, """
        WITH t AS (
            SELECT * FROM target_maps WHERE dataset_id = $dataset AND model_id = $model AND method = $method
              AND method_params = $params AND role = 'true'
              AND ($all OR list_contains($ids, image_id))
            QUALIFY method_version = max(method_version) OVER ())
        SELECT t.image_id, p.label, p.pred, e.target AS pred_target, t.target AS true_target, t.method_version,
               e.grid_h AS pred_grid_h, e.grid_w AS pred_grid_w, e.map AS pred_map,
               t.grid_h AS true_grid_h, t.grid_w AS true_grid_w, t.map AS true_map
        FROM t JOIN predictions p USING (dataset_id, model_id, image_id)
        LEFT JOIN explanations e USING (dataset_id, model_id, method, method_version, method_params, image_id)
        ORDER BY t.image_id LIMIT $limit""",
                  {"dataset": dataset_id, "model": model_id, "method": method, "params": method_params,
                   "all": image_ids is None, "ids": list(image_ids or []), "limit": int(limit)})


def both_class_scores(path, dataset_id: str, model_id: str, method: str, method_params: str = "{}",
                      image_ids: list[str] | None = None) -> pd.DataFrame:
    """Per misclassified image, metric and region: the score of the true-class map and that of the
    predicted-class map (NULL where undefined or degenerate)."""
    return _query(path, """
        SELECT ts.image_id, ts.metric, ts.metric_params, ts.region, ts.target AS true_target,
               s.value AS pred_value, ts.value AS true_value
        FROM target_scores ts
        LEFT JOIN scores s USING (dataset_id, model_id, method, method_version, method_params, metric,
                                  metric_version, metric_params, region, image_id)
        WHERE ts.dataset_id = $dataset AND ts.model_id = $model AND ts.method = $method
          AND ts.method_params = $params AND ts.role = 'true' AND ($all OR list_contains($ids, ts.image_id))
        QUALIFY ts.method_version = max(ts.method_version) OVER ()
        ORDER BY ALL""",
                  {"dataset": dataset_id, "model": model_id, "method": method, "params": method_params,
                   "all": image_ids is None, "ids": list(image_ids or [])})


def class_name(classes, index) -> str:
    """The full name of class ``index`` (its index where the dataset has no such class)."""
    if index is None or index != index:
        return "?"
    i = int(index)
    return str(classes[i]) if 0 <= i < len(classes) else str(i)


def both_class_table(scores: pd.DataFrame, labels: pd.DataFrame, classes) -> pd.DataFrame:
    """One row per (image, metric, region): the true and predicted class names in full, the score of each
    class's map and true − predicted.  ``labels``: image_id, label, pred (as ``both_class_maps``)."""
    cols = ["image_id", "true class", "predicted class", "metric", "region", "score (predicted-class map)",
            "score (true-class map)", "true − predicted"]
    if scores.empty:
        return pd.DataFrame(columns=cols)
    df = scores.merge(labels[["image_id", "label", "pred"]], on="image_id", how="left")
    out = pd.DataFrame({
        "image_id": df.image_id,
        "true class": [class_name(classes, v) for v in df.label],
        "predicted class": [class_name(classes, v) for v in df.pred],
        "metric": df.metric, "region": df.region,
        "score (predicted-class map)": pd.to_numeric(df.pred_value, errors="coerce"),
        "score (true-class map)": pd.to_numeric(df.true_value, errors="coerce"),
    })
    out["true − predicted"] = out["score (true-class map)"] - out["score (predicted-class map)"]
    return out.sort_values(["metric", "region", "image_id"]).reset_index(drop=True)[cols]


def both_class_caption(image_id: str, classes, label, pred) -> str:
    """The figure's row title: both class names in full."""
    return f"{image_id}: true class {class_name(classes, label)}; predicted {class_name(classes, pred)}"


def both_class_panels(path, dataset_id: str, model_id: str, methods: list[tuple[str, str]],
                      metric: str | None = "pointing_game", region: str | None = "mask",
                      image_ids: list[str] | None = None, n: int = 4) -> tuple[list, list[str]]:
    """The "predicted vs true class" figure: a row per misclassified image (``image_ids``, or the first
    ``n`` with a true-class map of the first method), per method two tiles -- the predicted class's map and
    the true class's -- each with its score of ``metric`` on ``region``; the row title names both classes in
    full.  Returns (panels, column titles) for :func:`engine.dashboard.figure.render_png` / ``render_svg``."""
    if not methods:
        raise ValueError("a figure needs at least one method")
    first = both_class_maps(path, dataset_id, model_id, *methods[0], image_ids=image_ids)
    ids = list(image_ids) if image_ids else list(first.image_id[:n])
    if not ids:
        raise ValueError(f"model {model_id!r}: no misclassified image has a true-class map of {methods[0][0]} "
                         f"(maps of both classes are computed by runs of this version on)")
    per_method = [(both_class_maps(path, dataset_id, model_id, m, p, ids).set_index("image_id"),
                   both_class_scores(path, dataset_id, model_id, m, p, ids)) for m, p in methods]
    panels = []
    for image_id in ids:
        row, sample, order, outlines, _, _ = image_as_scored(path, dataset_id, model_id, image_id)
        grids, texts = [], []
        for maps, scores in per_method:
            r = maps.loc[image_id] if image_id in maps.index else None
            s = scores[(scores.image_id == image_id) & (scores.metric == metric) & (scores.region == region)]
            for role in ("pred", "true"):
                if r is None or r[f"{role}_map"] is None:
                    grids.append(None)
                    texts.append("no map")
                    continue
                grids.append(queries.map_array({"map": r[f"{role}_map"], "grid_h": r[f"{role}_grid_h"],
                                                "grid_w": r[f"{role}_grid_w"]}))
                v = s[f"{role}_value"].iloc[0] if len(s) else None
                texts.append(f"{metric} {'n/a' if v is None or v != v else f'{v:.2f}'}" if metric else "")
        classes = list(row["classes"])
        panels.append(Panel(image_id, sample.image.permute(1, 2, 0).numpy(), outlines, grids, texts,
                            caption=image_id, region_order=order,
                            title=both_class_caption(image_id, classes, row["label"], row["pred"])))
    titles = [f"{t} · {role}" for t in method_titles(methods) for role in ("predicted", "true")]
    return panels, titles
