"""A tiny experiment (generated smear, 1-epoch demo ViT) and helpers to compare result databases."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import PROJECT_ROOT

TINY = """
name = "tiny"
seed = 0
batch_size = 8
work_dir = "work"

[[datasets]]
name = "smear"
generate = "blood_smear"
params = {{ n_train = 40, n_val = 12, n_test = 10 }}

[[models]]
name = "vit_demo"
init = "trained"
train = {{ epochs = 1, lr = 2e-3, batch_size = 16 }}

[[models]]
name = "vit_demo"
init = "random"

[methods]
attention = [{{ layer = -1 }}, {{ layer = 0 }}]
gradcam_attn = {{}}
saliency = {{}}
baseline_random = {{}}

[metrics]
pointing_game = {{}}
iou_top5 = {{}}
insertion_auc = {{ n_steps = {n_steps} }}

[sanity]
images = 2
"""

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


def write_experiment(folder: Path, n_steps: int = 3, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.toml"
    path.write_text(TINY.format(n_steps=n_steps) + extra)
    return path


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
            for c in df.columns:  # FLOAT[] columns: compare the exact bytes
                if len(df) and isinstance(df[c].iloc[0], (list, tuple, np.ndarray)):
                    df[c] = [None if v is None else np.asarray(v, dtype=np.float32).tobytes() for v in df[c]]
            out[table] = df.sort_values(key).reset_index(drop=True)
    return out


def assert_same_results(a: Path, b: Path) -> None:
    ra, rb = results(a), results(b)
    for table in RESULT_TABLES:
        assert len(ra[table]) == len(rb[table]), table
        pd.testing.assert_frame_equal(ra[table], rb[table], check_exact=True, obj=table)


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
