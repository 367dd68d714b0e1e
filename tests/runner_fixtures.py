"""The tiny experiment (data/experiments/tiny.toml: generated smear, 1-epoch demo ViT) as the runner tests
run it, and helpers to compare result databases."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT_ROOT
from tiny_experiment import tiny, write_tiny

RESULT_TABLES = {  # table -> columns that identify a row (run bookkeeping left out)
    "predictions": ["dataset_id", "model_id", "image_id"],
    "explanations": ["dataset_id", "model_id", "method", "method_params", "image_id"],
    "scores": ["dataset_id", "model_id", "method", "method_params", "metric", "metric_params", "region", "image_id"],
    "curves": ["dataset_id", "model_id", "method", "method_params", "metric", "metric_params", "image_id"],
    "sanity": ["dataset_id", "model_id", "method", "step", "image_id"],
    "summary": ["dataset_id", "model_id", "method", "method_params", "metric", "metric_params", "region"],
    "models": ["model_id"],
    "jobs": ["job_key"],
}
BOOKKEEPING = {"run_id", "started_at", "finished_at", "seconds", "failed_at", "checkpoint"}


def write_experiment(folder: Path, n_steps: int = 3) -> Path:
    """``folder/tiny.toml``: the tiny experiment with its work dir in ``folder`` and ``n_steps`` insertion steps."""
    metrics = {**tiny()["metrics"], "insertion_auc": {"n_steps": n_steps}}
    return write_tiny(folder / "tiny.toml", work_dir="work", metrics=metrics)


def run_cli(*args, timeout=600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=timeout, **kw)


def results(db: Path) -> dict[str, pd.DataFrame]:
    """Every result table, sorted, without run bookkeeping columns (for equality across runs)."""
    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for table, key in RESULT_TABLES.items():
            df = con.execute(f"SELECT * FROM {table}").df()
            df = df[[c for c in df.columns if c not in BOOKKEEPING]].copy()
            out[table] = df.sort_values(key).reset_index(drop=True)
    return out


def _is_array_column(s: pd.Series) -> bool:
    return len(s) > 0 and isinstance(s.iloc[0], (list, tuple, np.ndarray))


def assert_same_results(a: Path, b: Path, rtol: float = 0.0) -> None:
    """Equal result tables: exactly (``rtol=0``), or floats within ``rtol`` (keys and counts exact)."""
    ra, rb = results(a), results(b)
    for table in RESULT_TABLES:
        x, y = ra[table], rb[table]
        assert list(x.columns) == list(y.columns) and len(x) == len(y), table
        for c in x.columns:
            if _is_array_column(x[c]):
                for u, v in zip(x[c], y[c]):
                    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
                    assert u.shape == v.shape and np.allclose(u, v, rtol=rtol, atol=rtol, equal_nan=True), \
                        f"{table}.{c}"
            elif rtol and pd.api.types.is_float_dtype(x[c]):
                np.testing.assert_allclose(x[c].to_numpy(), y[c].to_numpy(), rtol=rtol, atol=rtol, err_msg=table)
            else:
                pd.testing.assert_series_equal(x[c], y[c], check_exact=True, obj=f"{table}.{c}")


@pytest.fixture(scope="session")
def first_run(tmp_path_factory):
    """The tiny experiment run once, uninterrupted, into a database: (experiment path, db, report)."""
    from engine.runner.experiment import load_experiment
    from engine.runner.run import run_experiment
    folder = tmp_path_factory.mktemp("run")
    exp_path = write_experiment(folder / "exp")
    db = folder / "r.duckdb"
    report = run_experiment(load_experiment(exp_path), db, progress=False)
    return exp_path, db, report
