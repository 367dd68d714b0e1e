"""One builder of ``scores`` rows for the tests: every column of the table (None where a test gives none)."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from engine.store.schema import columns

KEY = dict(run_id="r", dataset_id="d", model_id="m", method="attention", method_version=1, method_params="{}",
           metric="pointing_game", metric_version=1, metric_params="{}", region="mask")


def score_rows(values: Mapping[str, float | None], **key) -> pd.DataFrame:
    """One row per (image id -> value) of ``values``, keyed by :data:`KEY` updated with ``key`` (any column of
    ``scores``, e.g. ``model_id``, ``method``, ``precision``)."""
    unknown = set(key) - {c for c, _ in columns("scores")}
    if unknown:
        raise KeyError(f"not columns of scores: {sorted(unknown)}")
    base = {c: None for c, _ in columns("scores")} | KEY | key
    return pd.DataFrame([base | {"image_id": i, "value": v} for i, v in values.items()],
                        columns=[c for c, _ in columns("scores")])
