"""The example plugin of docs/plugins.md (docs/examples/my_plugin): its method and metric by hand on tiny inputs,
batch == singles, and end to end through ``engine run`` (local executor and Ray) onto the Leaderboard."""
from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys

import duckdb
import numpy as np
import pytest
import torch
from conftest import PROJECT_ROOT, tiny_vit

from engine.explain import METHODS
from engine.metrics import METRICS

EXAMPLES = PROJECT_ROOT / "docs" / "examples"
EXPERIMENT = EXAMPLES / "plugins.toml"


@pytest.fixture(scope="module")
def plugin():
    """The example modules, imported as a plugin is; the registries are restored afterwards."""
    methods, metrics = dict(METHODS), dict(METRICS)
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield (importlib.import_module("my_plugin.methods").grad_x_patch_embedding,
               importlib.import_module("my_plugin.metrics").precision_topk)
    finally:
        sys.path.remove(str(EXAMPLES))
        for name in [n for n in sys.modules if n == "my_plugin" or n.startswith("my_plugin.")]:
            del sys.modules[name]
        METHODS.clear()
        METHODS.update(methods)
        METRICS.clear()
        METRICS.update(metrics)


class _Embed(torch.nn.Module):
    """2 x 2 patches of a 1-channel 4 x 4 image, each embedded as the sum of its pixels (1 channel)."""
    grid_size = (2, 2)

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Conv2d(1, 1, 2, stride=2, bias=False)
        torch.nn.init.ones_(self.proj.weight)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, 4 tokens, 1 channel)


class _Toy(torch.nn.Module):
    """logits = (mean token embedding, minus it): d logit_0 / d e_t = 1/4."""

    def __init__(self):
        super().__init__()
        self.patch_embed = _Embed()

    def forward(self, x):
        m = self.patch_embed(x).mean(dim=1)
        return torch.cat([m, -m], dim=1)


def test_grad_x_patch_embedding_by_hand(plugin):
    method, _ = plugin
    x = torch.tensor([[1., 1, 2, 2], [1, 1, 2, 2], [0, 0, 3, 3], [0, 0, 3, 3]]).reshape(1, 1, 4, 4)
    # patch sums e = [4, 8, 0, 12]; R_t = e_t * d logit / d e_t = +-e_t / 4
    torch.testing.assert_close(method(_Toy().eval(), x, torch.tensor([0])), torch.tensor([[[1., 2], [0, 3]]]))
    torch.testing.assert_close(method(_Toy().eval(), x, torch.tensor([1])), torch.tensor([[[-1., -2], [0, -3]]]))
    assert METHODS["grad_x_patch_embedding"].fn is method and not METHODS["grad_x_patch_embedding"].builtin
    with pytest.raises(NotImplementedError, match="no patch_embed"):
        method(torch.nn.Linear(2, 2), x, torch.tensor([0]))


def test_grad_x_patch_embedding_on_a_vit_batch_equals_singles(plugin):
    method, _ = plugin
    model = tiny_vit(num_classes=3, img=16, patch=4)
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0, 2, 1])
    batch = method(model, x, t)
    assert batch.shape == (3, 4, 4) and batch.dtype == torch.float32 and torch.isfinite(batch).all()
    singles = torch.cat([method(model, x[i:i + 1], t[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, singles, atol=1e-6, rtol=1e-5)
    assert not any(p.grad is not None for p in model.parameters())  # the model is left as it was


def test_precision_topk_by_hand(plugin):
    _, metric = plugin
    maps = torch.arange(10.).reshape(1, 2, 5)                       # pixel i has value i
    region = torch.zeros(1, 2, 5, dtype=torch.bool)
    region[0, 1, 4] = True                                          # pixel 9 only
    assert metric(maps, region, k=20.0).tolist() == [0.5]           # top 2 = {9, 8}: one inside
    assert metric(maps, region, k=10.0).tolist() == [1.0]           # top 1 = {9}
    ties = torch.tensor([[[5., 5, 5, 1, 1], [1, 1, 1, 1, 1]]])      # 3 pixels tie at the threshold
    tie_region = torch.zeros(1, 2, 5, dtype=torch.bool)
    tie_region[0, 0, 0] = True
    assert metric(ties, tie_region, k=10.0).tolist() == pytest.approx([1 / 3])
    assert math.isnan(metric(maps, torch.zeros_like(region), k=10.0)[0])
    with pytest.raises(ValueError, match="k must be a percentage"):
        metric(maps, region, k=0.0)


def test_precision_topk_batch_equals_singles(plugin):
    _, metric = plugin
    g = torch.Generator().manual_seed(1)
    maps, regions = torch.rand(5, 12, 12, generator=g), torch.rand(5, 12, 12, generator=g) > 0.7
    regions[3] = False
    batch = metric(maps, regions, k=7.0)
    singles = np.concatenate([metric(maps[i:i + 1], regions[i:i + 1], k=7.0) for i in range(5)])
    np.testing.assert_array_equal(batch, singles)
    assert batch.dtype == np.float64 and np.isnan(batch[3]) and np.isfinite(np.delete(batch, 3)).all()


def _engine_run(tmp_path, executor: str) -> tuple[subprocess.CompletedProcess, object]:
    db = tmp_path / "plugins.duckdb"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES), str(PROJECT_ROOT)]), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "engine", "run", str(EXPERIMENT), "--db", str(db), "--work-dir",
                          str(tmp_path / "work"), "--executor", executor, "--no-progress", "--threads", "1"],
                         cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    return out, db


def _check_leaderboard(db) -> None:
    """The plugin's method and metric on the Leaderboard beside the built-ins, with CIs and baseline verdicts."""
    from engine.dashboard.leaderboard import leaderboard_table
    from engine.dashboard.queries import leaderboard_view
    with duckdb.connect(str(db), read_only=True) as con:
        (dataset_id,) = con.execute("SELECT dataset_id FROM datasets").fetchone()
        failures = con.execute("SELECT method, stage, reason FROM failures").fetchall()
        sanity = {m for (m,) in con.execute("SELECT DISTINCT method FROM sanity").fetchall()}
    assert failures == []
    assert "grad_x_patch_embedding" in sanity
    for metric in ("precision_topk", "pointing_game"):
        board, pairs = leaderboard_view(db, dataset_id, metric, "mask")
        table = leaderboard_table(board, pairs, "model")
        assert set(table["method"]) >= {"grad_x_patch_embedding", "attention", "gradcam", "baseline_random",
                                        "baseline_centre"}, table
        assert table["model_id"].nunique() == 2  # the fine-tuned model and its random-weights twin
        ours = table[table["method"] == "grad_x_patch_embedding"]
        assert ours["rank"].notna().all() and ours["ci_low"].notna().all() and ours["ci_high"].notna().all()
        assert (ours["ci_low"] <= ours["mean"]).all() and (ours["mean"] <= ours["ci_high"]).all()
        for verdict in ("vs random map", "vs centre map"):  # '+0.123 (p 0.01, better)', '–' when not tested
            assert ours[verdict].str.match(r"^[+-]\d\.\d{3} \(p ").all(), ours[verdict]
        assert ours["n"].eq(12).all()


@pytest.mark.slow  # end-to-end: `engine run` of the example, twice
def test_the_example_plugin_runs_through_engine_run_onto_the_leaderboard(tmp_path):
    out, db = _engine_run(tmp_path, "local")
    assert out.returncode == 0, out.stderr[-3000:]
    _check_leaderboard(db)
    again, _ = _engine_run(tmp_path, "local")  # nothing to do the second time
    assert again.returncode == 0 and "0 jobs done" in again.stdout, again.stdout[-2000:]


@pytest.mark.slow
def test_the_example_plugin_runs_on_ray_workers(tmp_path):
    if os.environ.get("REQUIRE_RAY") != "1":
        pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")
    out, db = _engine_run(tmp_path, "ray")
    assert out.returncode == 0, out.stderr[-3000:]
    _check_leaderboard(db)

