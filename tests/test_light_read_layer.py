"""The read layer is light: importing ``engine.dashboard`` (and its cached facade) and running ``status``,
``report`` and ``table`` load neither torch nor timm (issue 26; drawing a map may load torch, lazily).
Each entry point runs in a fresh interpreter, which then reports what ``sys.modules`` holds."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import PROJECT_ROOT
from score_rows import score_rows

from engine.store import ResultWriter

HEAVY = ("torch", "timm")
PROBE = ("import json, sys\n{body}\n"
         "print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))")


def loaded(body: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body, heavy=HEAVY)], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("light") / "r.duckdb"
    key = dict(dataset_id="d@1", model_id="m", method="saliency", method_version=1, method_params="{}",
               metric="pointing_game", metric_version=1, metric_params="{}", region="mask")
    with ResultWriter(db) as w:
        w.upsert("datasets", dict(dataset_id="d@1", name="d", classes=["a", "b"]))
        w.upsert("models", dict(model_id="m", dataset_id="d@1", name="vit", init="trained"))
        w.replace_rows("scores", score_rows({"a": 1.0}, **key))
        w.replace_rows("summary", pd.DataFrame([dict(**key, n=1, n_undefined=0, mean=1.0, ci_low=1.0, ci_high=1.0,
                                                     n_degenerate=0, substrate=None, gap_random=None, p_random=None,
                                                     gap_centre=None, p_centre=None)]))
    return db


def test_the_probe_sees_a_heavy_import():
    # a check that cannot fail proves nothing: the probe must report torch when it is loaded
    assert loaded("import torch") == ["torch"]


@pytest.mark.parametrize("module", ["engine.dashboard", "engine.dashboard.cache", "engine.dashboard.report",
                                    "engine.dashboard.export", "engine.dashboard.status", "engine.cli"])
def test_importing_the_read_layer_loads_neither_torch_nor_timm(module):
    assert loaded(f"import {module}") == []


@pytest.mark.parametrize("argv", [["status"], ["status", "--all"], ["report", "--out", "{tmp}/r.md"],
                                  ["table", "--dataset", "d@1"]], ids=lambda a: " ".join(a[:2]))
def test_the_reading_commands_load_neither_torch_nor_timm(argv, tiny_db, tmp_path):
    args = [a.format(tmp=tmp_path) for a in argv] + ["--db", str(tiny_db)]
    body = f"from engine.cli import main\nrc = main({args!r})\nassert rc == 0, rc"
    assert loaded(body) == []
