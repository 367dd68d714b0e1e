"""Shared fixtures: a small generated dataset, a tiny ViT, a fixture results database, shared data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from engine import PROJECT_ROOT  # noqa: F401  (tests import it from here)

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def shared_data(sub: str) -> Path:
    """Path to a shared real dataset; skip (or fail under REQUIRE_SHARED_DATA=1) when absent."""
    p = SHARED_DATA / sub
    if not p.exists():
        msg = f"shared dataset {p} is not present (it lives beside the project root as ../shared/data)"
        if os.environ.get("REQUIRE_SHARED_DATA") == "1":
            pytest.fail(msg + " but REQUIRE_SHARED_DATA=1")
        pytest.skip(msg)
    return p


@pytest.fixture(scope="session")
def smear_root(tmp_path_factory) -> Path:
    from engine.data.synthetic.smear import SmearConfig, generate_blood_smear
    return generate_blood_smear(tmp_path_factory.mktemp("smear"), SmearConfig(n_train=16, n_val=8, n_test=12),
                                progress=False)


@pytest.fixture(scope="session")
def smear_spec(smear_root):
    from engine.data.synthetic.smear import smear_spec
    return smear_spec(smear_root)


def tiny_vit(num_classes: int = 3, img: int = 8, patch: int = 4, depth: int = 2, heads: int = 2, dim: int = 8,
             seed: int = 0, **kw):
    """A real timm ViT, tiny: by default 2 blocks, 2 heads, 2 x 2 = 4 patches."""
    import timm
    torch.manual_seed(seed)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=num_classes, img_size=img,
                             patch_size=patch, depth=depth, num_heads=heads, embed_dim=dim, **kw).eval()


def unit_predictions(spec, checkpoint, sha256: str, *, run_id: str, dataset_id: str, model_id: str):
    """The ``predictions`` rows of a saved checkpoint on ``spec``'s test split, written the way a run writes
    them: by :func:`engine.runner.units.predict_unit`, the production path."""
    import json

    from engine.runner.units import predict_unit
    spec_json = json.dumps(spec.to_dict(), sort_keys=True, default=str)
    return predict_unit(spec_json, str(checkpoint), sha256, (), "cpu", 32, run_id=run_id, dataset_id=dataset_id,
                        model_id=model_id).predictions


def fixture_model(w, model_id: str):
    """(model, info) of a fixture model, loaded from the checkpoint its ``models`` row names."""
    from engine.models import load_checkpoint
    path = w.con.execute("SELECT checkpoint FROM models WHERE model_id = ?", [model_id]).fetchall()[0][0]
    model, info, _ = load_checkpoint(path)
    return model.eval(), info


@pytest.fixture(scope="session")
def fixture_db(tmp_path_factory, smear_spec) -> Path:
    """A real (small) results database: a random-weight demo ViT explained and scored on 12 images."""
    from engine.data import ImageDataset, load_records
    from engine.models import create_model, save_checkpoint
    from engine.runner.evaluate import evaluate_model
    from engine.runner.ingest import (
        finish_run,
        refresh_quality,
        refresh_summaries,
        start_run,
        write_dataset,
        write_model,
    )
    from engine.store import ResultWriter

    out = tmp_path_factory.mktemp("db")
    db = out / "fixture.duckdb"
    records, classes = load_records(smear_spec)
    test_ds = ImageDataset(smear_spec, "test", records=records, classes=classes)
    with ResultWriter(db) as w:
        run_id = start_run(w, "test", {"fixture": True})
        dataset_id = write_dataset(w, smear_spec, records, classes)
        for seed, init, strategy in ((1, "random", "supervised"), (2, "random-b", "dino")):
            torch.manual_seed(seed)
            model, info = create_model("vit_demo", len(classes))
            sha = save_checkpoint(out / f"m{seed}.safetensors", model, info, {"init": init})
            model_id = write_model(w, dataset_id=dataset_id, info=info, init=init,
                                   checkpoint=str(out / f"m{seed}.safetensors"), sha256=sha, val_accuracy=None,
                                   test_accuracy=0.25, history=[],
                                   hparams={"pretraining": {"steps": 200, "loss_last": 5.5, "collapse": "uniform"}}
                                   if strategy == "dino" else {})
            res = evaluate_model(model.eval(), info, test_ds, run_id=run_id, dataset_id=dataset_id,
                                 model_id=model_id, methods={"attention": {}, "chefer_gae": {}},
                                 metrics={"pointing_game": {}, "iou_top5": {}, "insertion_auc": {"n_steps": 4},
                                          "deletion_auc": {"n_steps": 4}}, progress=False)
            w.replace_rows("predictions", unit_predictions(smear_spec, out / f"m{seed}.safetensors", sha,
                                                           run_id=run_id, dataset_id=dataset_id, model_id=model_id))
            w.replace_rows("explanations", res.explanations)
            w.replace_rows("scores", res.scores)
            w.replace_rows("curves", res.curves)
            refresh_summaries(w, dataset_id, model_id)
            w.con.execute("UPDATE models SET arch = 'vit', strategy = ?, pretraining = strategy, "
                          "test_balanced_accuracy = 0.25, "
                          "test_macro_f1 = 0.2, test_auroc = 0.5 WHERE model_id = ?", [strategy, model_id])
            _fixture_sanity(w, model, info, test_ds, run_id, dataset_id, model_id)
            _fixture_jobs(w, run_id, dataset_id, model_id)
        refresh_quality(w, dataset_id)
        finish_run(w, run_id, "finished")
        failed_run = start_run(w, "run", {"experiment": "fixture-failed"})
        finish_run(w, failed_run, "failed")
    return db


def _fixture_sanity(w, model, info, ds, run_id, dataset_id, model_id) -> None:
    """Real MPRT rows (cascading randomisation) of the attention method on the first 2 images."""
    import pandas as pd

    from engine.data import collate_samples
    from engine.metrics.sanity import mprt
    from engine.models import normalise
    batch = collate_samples([ds[i] for i in range(2)])
    rows = mprt(model, normalise(batch["image"], info), {"attention": {}}, seed=0)
    w.replace_rows("sanity", pd.DataFrame([{
        "run_id": run_id, "dataset_id": dataset_id, "model_id": model_id, "method": r["method"],
        "method_version": 1, "method_params": "{}", "step": r["step"], "layer": r["layer"],
        "image_id": batch["image_id"][r["image"]], "spearman": None if r["spearman"] != r["spearman"] else
        r["spearman"], "ssim": r["ssim"], "precision": "fp32"} for r in rows]))


def _fixture_jobs(w, run_id, dataset_id, model_id) -> None:
    """Bookkeeping rows as a batch run writes them: one done and one failed job, one failed item."""
    import datetime as dt

    import pandas as pd
    t = dt.datetime(2026, 1, 1, 12, 0, 0)
    for k, status in enumerate(("done", "failed")):
        w.upsert("jobs", {"job_key": f"{model_id}-{k}", "run_id": run_id, "experiment": "fixture", "kind": "evaluate",
                          "dataset_id": dataset_id, "model_id": model_id, "method": "attention", "method_version": 1,
                          "method_params": "{}", "metrics": {"pointing_game": {"version": 1, "params": {}}},
                          "status": status, "n_items": 12, "n_failed": k, "started_at": t,
                          "finished_at": t + dt.timedelta(seconds=3), "seconds": 3.0})
    w.replace_rows("failures", pd.DataFrame([{
        "run_id": run_id, "job_key": f"{model_id}-1", "dataset_id": dataset_id, "model_id": model_id,
        "method": "attention", "item": "*", "stage": "explain", "reason": "fixture: out of memory", "failed_at": t}]))


@pytest.fixture(scope="session")
def dashboard_db(tmp_path_factory, fixture_db, smear_spec) -> Path:
    """``fixture_db`` plus what only the dashboard's comparisons read: an attention-depth ablation (the
    first model's attention of block 0, explained and scored for real) and mass on a region named
    ``marker`` (synthetic values: the smear dataset has no confounder)."""
    import shutil

    import numpy as np
    import pandas as pd

    from engine.data import ImageDataset, load_records
    from engine.runner.evaluate import evaluate_model
    from engine.runner.ingest import refresh_summaries
    from engine.store import ResultWriter

    db = tmp_path_factory.mktemp("dash") / "dashboard.duckdb"
    shutil.copyfile(fixture_db, db)
    records, classes = load_records(smear_spec)
    test_ds = ImageDataset(smear_spec, "test", records=records, classes=classes)
    with ResultWriter(db) as w:
        run_id, dataset_id = w.con.execute("SELECT run_id, dataset_id FROM predictions LIMIT 1").fetchone()
        model_ids = [r[0] for r in w.con.execute("SELECT model_id FROM models ORDER BY init").fetchall()]
        model, info = fixture_model(w, model_ids[0])  # the 'random' model (seed 1 in fixture_db)
        for layer in (0, 1):
            res = evaluate_model(model, info, test_ds, run_id=run_id, dataset_id=dataset_id,
                                 model_id=model_ids[0], methods={"attention": {"layer": layer}},
                                 metrics={"pointing_game": {}, "iou_top5": {}}, progress=False)
            w.replace_rows("explanations", res.explanations)
            w.replace_rows("scores", res.scores)
        rng = np.random.default_rng(0)
        marker = w.con.execute("SELECT * FROM scores WHERE metric = 'pointing_game' AND region = 'mask' "
                               "AND method_params = '{}'").df()
        marker = marker.assign(metric="energy_pg", region="marker",
                               value=np.where(marker.method == "attention", 0.6, 0.1) + rng.random(len(marker)) * 0.1)
        # the random-map baseline's share: what a map blind to the marker puts there (the flag's reference)
        blind = marker[marker.method == "chefer_gae"].assign(method="baseline_random", value=0.15)
        w.replace_rows("scores", pd.concat([marker, blind]))
        for mid in model_ids:
            refresh_summaries(w, dataset_id, mid)
    return db


from guards_fixtures import guards_db  # noqa: E402,F401  (the fixture database with every guard in it)
from layout_trees import layout_run  # noqa: E402,F401  (a small run on the docs' two example layouts, a session fixture)
from runner_fixtures import first_run  # noqa: E402,F401  (the tiny experiment's first run, a session fixture)
