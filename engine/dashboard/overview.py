"""The Overview page's method table, as a pure function of :func:`.queries.method_summary` rows."""
from __future__ import annotations

import numpy as np
import pandas as pd

# the runs table's two durations, named so the second never reads as wall time: jobs of one chunk each count
# the chunk's seconds, so their sum can be many times the wall time
WALL_TIME = "wall time (s)"
JOB_TIME = "sum of job durations (s; overlapping, not wall time)"
RUN_TIMES = {"seconds": WALL_TIME, "job_seconds": JOB_TIME}

# metrics that are the same number on a non-negative map (docs/metrics.md): shown once where they coincide
COINCIDING = ("energy_pg", "mass_accuracy")


def merge_coinciding(df: pd.DataFrame, pair: tuple[str, str] = COINCIDING, atol: float = 1e-9) -> pd.DataFrame:
    """``df`` (method, metric, region, ... , mean_of_model_means) with each (method, region, other keys)
    whose two ``pair`` rows hold the same numbers shown once, as metric ``"a = b"``; rows where the
    two differ (signed maps) stay apart."""
    a, b = pair
    keys = [c for c in df.columns if c not in ("metric", "models", "n", "mean_of_model_means")]
    left, right = df[df.metric == a], df[df.metric == b]
    if left.empty or right.empty:
        return df
    both = left.merge(right, on=keys, suffixes=("", "_b"))
    same = both[(both.models == both.models_b) & (both.n == both.n_b)
                & np.isclose(both.mean_of_model_means.astype(float), both.mean_of_model_means_b.astype(float),
                             atol=atol, equal_nan=True)]
    if same.empty:
        return df
    drop = df.merge(same[keys], on=keys, how="left", indicator=True)["_merge"].eq("both").to_numpy() \
        & df.metric.isin(pair).to_numpy()
    merged = same[df.columns.tolist()].assign(metric=f"{a} = {b}")
    return pd.concat([df[~drop], merged]).sort_values([c for c in ("method", "metric", "region") if c in df]) \
        .reset_index(drop=True)
