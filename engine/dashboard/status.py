"""``python -m engine status``: what a results database holds, on one screen (``full``: every table)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..common.verdicts import MIN_IMAGES, SURVIVES
from . import queries, queries_compare
from .hints import serve_command, status_command
from .live import live_run


def _table(df: pd.DataFrame) -> str:
    return df.to_string(index=False) if len(df) else "  (none)"


def status_text(db: Path, full: bool = False) -> str:
    """The short summary (counts, the run under way or the last runs, datasets, models with test
    accuracy, per-method coverage, MPRT survivors per model, the latest failures), or with ``full``
    every run, model column, score summary, MPRT row and failure."""
    counts = dict(queries.table_counts(db).itertuples(index=False))
    out = [f"database {db}",
           ", ".join(f"{t} {int(counts.get(t, 0)):,}" for t in ("datasets", "models", "explanations", "scores",
                                                                  "failures"))]
    view = live_run(db)
    if view is not None and view.running:
        out += ["", view.headline, *("  " + d for d in view.details)]
    if full:
        sections = [("runs", queries.runs(db)), ("datasets", queries.datasets(db)), ("models", queries.models(db)),
                    ("scores", queries.method_summary(db)),
                    ("sanity (MPRT, after full randomisation)", queries.sanity_summary(db)),
                    ("failures (latest first)", queries_compare.failures(db, limit=50))]
        for title, df in sections:
            out += ["", f"{title}:", _table(df)]
        return "\n".join(out)
    runs = queries.runs(db, 3)[["run_id", "status", "started_at", "seconds"]]
    models = queries.models(db)
    scores = queries.method_summary(db)
    coverage = scores
    if len(scores):
        per = scores.groupby(["method", "metric", "region"], as_index=False).agg(models=("models", "sum"),
                                                                                  n=("n", "sum"))
        coverage = per.groupby("method").agg(models=("models", "max"), metrics=("metric", "nunique"),
                                             images=("n", "sum")).reset_index().astype({"images": "int64"})
    sanity = queries.sanity_summary(db)
    survivors = sanity
    if len(sanity):  # undefined (NULL) correlations count as not surviving
        ok = sanity["survives_randomisation"].astype("boolean").fillna(False).astype(bool)
        survivors = pd.DataFrame(
            [{"model_id": m, "methods": len(g), "survive_randomisation": int(ok[g.index].sum()),
              "which": ", ".join(g.loc[ok[g.index], "method"]) or "–"} for m, g in sanity.groupby("model_id")])
    fails = queries_compare.failures(db, limit=5)[["failed_at", "stage", "method", "item", "reason"]]
    out += ["", "last runs:", _table(runs),
            "", "datasets:", _table(queries.datasets(db)[["name", "n_images", "classes"]]),
            "", "models (test accuracy):", _table(models[["model_id", "test_accuracy", "test_balanced_accuracy"]]),
            "", "methods (models explained, metrics, images scored summed over models and regions):",
            _table(coverage),
            "", f"sanity (MPRT): methods whose maps survive full randomisation (Spearman > {SURVIVES}; "
                f"baseline maps and methods with fewer than {MIN_IMAGES} images with a value not counted)",
            _table(survivors),
            "", "failures (latest 5):", _table(fails),
            "", f"every table: {status_command(db, full=True)}; the dashboard (serves this database, "
                f"starts no work): {serve_command(db)}"]
    return "\n".join(out)
