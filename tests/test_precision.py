"""Precision (fp32 / bf16 autocast), threads and the Captum memory bound; bf16 on CPU end to end; the
CPU dry run of bench/gpu_check.sh."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import PROJECT_ROOT, tiny_vit
from tiny_experiment import tiny, write_tiny
from torch import nn

from engine.common.precision import autocast, default_precision, default_threads, resolve_precision, set_threads
from engine.explain import METHODS, run_methods
from engine.explain.captum_methods import activation_bytes, rows_per_pass
from engine.metrics import METRICS

TRACE = ["attention", "rollout", "grad_rollout", "chefer_gae", "gradcam_attn", "gradcam", "chefer_lrp"]


def test_precision_defaults_and_errors():
    assert default_precision("cpu") == "fp32" and default_precision("cuda") == "bf16"
    assert resolve_precision(None, "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision 'fp16'"):
        resolve_precision("fp16", "cpu")
    lin = nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with autocast("cpu", "bf16"):
        assert lin(x).dtype == torch.bfloat16
        with autocast("cpu", "fp32"):  # fp32 switches an enclosing autocast off
            assert lin(x).dtype == torch.float32


def test_default_threads_never_oversubscribes(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads(workers=1, cores=8) == 8
    assert default_threads(workers=3, cores=8) == 2  # 8 // 3
    assert default_threads(workers=16, cores=8) == 1  # at least one
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads(workers=1, cores=8) == 1  # an explicit OMP_NUM_THREADS caps it
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        with pytest.raises(ValueError):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_activation_bytes_hand_computed():
    # Linear(10, 20) saves its input (10 floats), ReLU its output (20), Linear(20, 3) its input (20):
    # 50 floats = 200 bytes per row; the weights (saved too) cancel in the difference of two batches.
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    x = torch.randn(5, 10)
    assert activation_bytes(m, x) == 200
    assert rows_per_pass(m, x, memory_budget=1000) == 5
    assert rows_per_pass(m, x, memory_budget=10) == 1  # never below one row
    with autocast("cpu", "bf16"):  # bf16 activations: half the bytes for the linear inputs and the ReLU
        assert activation_bytes(m, x) < 200


@pytest.mark.parametrize("method,params", [("integrated_gradients", {"n_steps": 6}), ("saliency", {}),
                                           ("occlusion", {}), ("smoothgrad", {"nt_samples": 3})])
def test_memory_budget_does_not_change_maps(method, params):
    model = tiny_vit(img=16, patch=4)
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0, 1, 2])
    big = METHODS[method](model, x, t, **params, memory_budget=1 << 50)  # unbounded: one pass
    row = activation_bytes(model, x)
    small = METHODS[method](model, x, t, **params, memory_budget=row)  # one model input per pass
    if method == "smoothgrad":  # split draws come from the same seeded generator in several calls
        assert small.shape == big.shape and torch.isfinite(small).all()
    else:
        torch.testing.assert_close(small, big, atol=1e-5, rtol=1e-4)


def test_bf16_run_methods_float32_maps_and_lrp_kept_fp32():
    model = tiny_vit(img=16, patch=4, depth=2, dim=16)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    fp32, _, t = run_methods(model, x, TRACE + ["saliency"])
    bf16, logits, t16 = run_methods(model, x, TRACE + ["saliency"], targets=t, precision="bf16")
    assert logits.dtype == torch.float32 and torch.equal(t16, t)
    for m in TRACE + ["saliency"]:
        assert bf16[m].dtype == torch.float32 and torch.isfinite(bf16[m]).all(), m
    torch.testing.assert_close(bf16["chefer_lrp"], fp32["chefer_lrp"])  # policy: chefer_lrp stays fp32
    scale = fp32["attention"].abs().amax()
    assert (bf16["attention"] - fp32["attention"]).abs().max() / scale < 5e-2  # bf16 has 8 mantissa bits
    forced, _, _ = run_methods(model, x, ["chefer_lrp"], targets=t, precision="bf16",
                               method_precision={"chefer_lrp": "bf16"})
    assert forced["chefer_lrp"].dtype == torch.float32 and torch.isfinite(forced["chefer_lrp"]).all()


def test_recorded_precision_is_what_explain_applied(smear_spec, monkeypatch):
    """Under a bf16 run whose explain stage follows it, a method registered with reduced_precision=False
    runs in fp32 and its maps, scores and MPRT rows record fp32; the others record bf16 -- in every case
    what the method saw (autocast on or off inside it), reported by run_methods, not recomputed."""
    from engine.common.precision import REDUCED_PRECISION_STAGES
    from engine.explain import register_method
    monkeypatch.setitem(REDUCED_PRECISION_STAGES, "explain", True)
    seen: dict[str, set[str]] = {}

    def spy(name):
        def fn(model, images, targets):
            seen.setdefault(name, set()).add("bf16" if torch.is_autocast_enabled("cpu") else "fp32")
            return images.mean(dim=1).float()
        return fn

    for name, reduced in (("keeps_fp32", False), ("follows_run", True)):
        register_method(name, version=1, needs_grads=False, reference="test", kind="model",
                        reduced_precision=reduced)(spy(name))
    try:
        _check_recorded_precision(smear_spec, seen)
    finally:  # other tests iterate over METHODS
        METHODS.pop("keeps_fp32")
        METHODS.pop("follows_run")


def _check_recorded_precision(smear_spec, seen: dict[str, set[str]]) -> None:
    from engine.data import ImageDataset, load_records
    from engine.metrics.sanity import mprt
    from engine.models import create_model, normalise
    from engine.runner.evaluate import evaluate_model
    records, classes = load_records(smear_spec)
    ds = ImageDataset(smear_spec, "test", records=[r for r in records if r.split == "test"][:3], classes=classes)
    torch.manual_seed(0)
    model, info = create_model("vit_demo", len(classes))
    res = evaluate_model(model.eval(), info, ds, run_id="r", dataset_id="d", model_id="m",
                         methods={"keeps_fp32": {}, "follows_run": {}}, metrics={"pointing_game": {}},
                         progress=False, precision="bf16")
    assert seen == {"keeps_fp32": {"fp32"}, "follows_run": {"bf16"}}
    for table in (res.explanations, res.scores):
        assert dict(table.groupby("method").precision.unique().map(list)) == {"keeps_fp32": ["fp32"],
                                                                            "follows_run": ["bf16"]}
    x = normalise(torch.stack([ds[i].image for i in range(2)]), info)
    rows = mprt(model, x, {"keeps_fp32": {}, "follows_run": {}}, precision="bf16")
    assert {(r["method"], r["precision"]) for r in rows} == {("keeps_fp32", "fp32"), ("follows_run", "bf16")}


def test_faithfulness_auto_batch_is_64_on_cpu_and_batching_does_not_change_aucs():
    from engine.metrics.faithfulness import auto_batch_size
    model = tiny_vit(img=16, patch=4, dim=16)
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    maps = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(6))
    t = torch.tensor([0, 1, 2])
    assert auto_batch_size(model, x) == 64
    auto = METRICS["deletion_auc"](maps, model=model, images=x, targets=t, n_steps=8)
    small = METRICS["deletion_auc"](maps, model=model, images=x, targets=t, n_steps=8, batch_size=5)
    assert abs(auto - small).max() < 1e-6


def test_bf16_faithfulness_close_to_fp32():
    model = tiny_vit(img=16, patch=4, dim=16)
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    maps = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(4))
    t = torch.tensor([0, 1, 2])
    for name in ("insertion_auc", "deletion_auc"):
        a = METRICS[name](maps, model=model, images=x, targets=t, n_steps=8)
        b = METRICS[name](maps, model=model, images=x, targets=t, n_steps=8, precision="bf16")
        assert b.dtype == a.dtype and abs(b - a).max() < 2e-2


@pytest.mark.slow  # end-to-end: a run of the tiny experiment
def test_quick_path_at_bf16_on_cpu_has_no_failures(tmp_path, monkeypatch):
    """train, predict, explain, faithfulness and MPRT under bf16 autocast on CPU: zero failures, and the
    precision recorded with the model, the maps, the scores, the curves and the sanity rows.  The
    default stage policy keeps explanations and faithfulness in fp32 (measured, docs/methods.md); here
    every stage is switched to bf16 so the whole path runs under autocast."""
    import duckdb

    from engine.common.precision import REDUCED_PRECISION_STAGES
    from engine.runner.experiment import load_experiment
    from engine.runner.run import run_experiment
    monkeypatch.setitem(REDUCED_PRECISION_STAGES, "explain", True)
    monkeypatch.setitem(REDUCED_PRECISION_STAGES, "faithfulness", True)
    base = tiny()  # one fine-tuned model; the tiny experiment's methods plus chefer_lrp (kept fp32) and Captum's
    path = write_tiny(tmp_path / "bf16.toml", name="bf16-cpu", work_dir="work", precision="bf16",
                      models=base["models"][:1],
                      methods={**base["methods"], "chefer_lrp": {}, "gradcam": {},
                               "integrated_gradients": {"n_steps": 2}, "smoothgrad": {"nt_samples": 2}},
                      metrics={**base["metrics"], "deletion_auc": {"n_steps": 2}},
                      sanity={"images": 2, "methods": ["attention", "chefer_lrp", "saliency"]})
    exp = load_experiment(path)
    assert exp.precision == "bf16"
    report = run_experiment(exp, tmp_path / "r.duckdb", progress=False, threads=1)
    assert report.ok and report.failed_jobs == 0 and report.failed_items == 0
    with duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True) as con:
        assert con.execute("SELECT precision, test_accuracy IS NOT NULL FROM models").fetchall() == [("bf16", True)]
        expl = dict(con.execute("SELECT method, any_value(precision) FROM explanations GROUP BY method").fetchall())
        assert expl["chefer_lrp"] == "fp32" and expl["attention"] == expl["saliency"] == "bf16"
        assert expl["baseline_random"] == "fp32"
        faith = con.execute("SELECT DISTINCT precision FROM scores WHERE region = 'none'").fetchall()
        assert faith == [("bf16",)]
        assert con.execute("SELECT DISTINCT precision FROM curves").fetchall() == [("bf16",)]
        sanity = dict(con.execute("SELECT method, any_value(precision) FROM sanity GROUP BY method").fetchall())
        assert sanity == {"attention": "bf16", "chefer_lrp": "fp32", "saliency": "bf16"}
        assert con.execute("SELECT DISTINCT precision FROM predictions").fetchall() == [("bf16",)]
    # the same experiment at fp32 is other jobs (precision is part of the keys), not a re-use
    again = run_experiment(exp, tmp_path / "r.duckdb", progress=False, precision="fp32", threads=1)
    assert again.skipped == 0 and again.ok


def test_default_stage_policy_keeps_maps_and_faithfulness_fp32():
    from engine.common.precision import stage_precision
    assert stage_precision("train", "bf16") == stage_precision("predict", "bf16") == "bf16"
    assert stage_precision("explain", "bf16") == stage_precision("faithfulness", "bf16") == "fp32"
    assert stage_precision("train", "fp32") == "fp32"


@pytest.mark.slow  # end-to-end: a run of the tiny experiment
def test_gpu_check_cpu_dry_run(tmp_path):
    """bench/gpu_check.sh with GPU_CHECK_DEVICE=cpu GPU_CHECK_TINY=1: every step runs, one table comes out."""
    out = tmp_path / "out"
    env = {**os.environ, "GPU_CHECK_DEVICE": "cpu", "GPU_CHECK_TINY": "1", "OUT": str(out),
           "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", "bench/gpu_check.sh"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = (out / "gpu_table.md").read_text()
    assert table.strip() in proc.stdout
    assert "**PASS**" in table and "missing modules: none" in table
    assert "RISE column skipped: --rise not given" in table
    explain = json.loads((out / "explain.json").read_text())
    assert set(explain["runs"]) == {"fp32", "bf16"}
    assert set(explain["agreement"]) >= set(TRACE) | {"integrated_gradients", "smoothgrad", "occlusion"}
    faith = json.loads((out / "faith.json").read_text())
    assert faith["other_precision"] == "fp32" and set(faith["max_abs_dauc_bf16_fp32"]) == {"insertion_auc",
                                                                                            "deletion_auc"}
    for what in ("six trace methods together", "chefer_lrp", "integrated_gradients", "insertion + deletion",
                 "bf16 on the demo's models (1 models, 4 images) | chefer_lrp"):
        assert what in table
    agreement = json.loads((out / "agreement.json").read_text())
    assert set(agreement["methods"]) == {"attention", "chefer_lrp", "saliency", "(faithfulness forwards)"}
    assert not agreement["skipped"]
