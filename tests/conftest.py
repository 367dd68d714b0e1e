"""Shared fixtures: a small generated dataset, a tiny ViT, a fixture results database, shared data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
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
    from engine.data.synthetic import SmearConfig, generate_blood_smear
    return generate_blood_smear(tmp_path_factory.mktemp("smear"), SmearConfig(n_train=16, n_val=8, n_test=12),
                                progress=False)


@pytest.fixture(scope="session")
def smear_spec(smear_root):
    from engine.runner.demo import demo_spec
    return demo_spec(smear_root)


def tiny_vit(num_classes: int = 3, img: int = 8, patch: int = 4, depth: int = 2, heads: int = 2, dim: int = 8,
             seed: int = 0, **kw):
    """A real timm ViT, tiny: by default 2 blocks, 2 heads, 2 x 2 = 4 patches."""
    import timm
    torch.manual_seed(seed)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=num_classes, img_size=img,
                             patch_size=patch, depth=depth, num_heads=heads, embed_dim=dim, **kw).eval()


@pytest.fixture(scope="session")
def fixture_db(tmp_path_factory, smear_spec) -> Path:
    """A real (small) results database: a random-weight demo ViT explained and scored on 12 images."""
    from engine.data import ImageDataset, load_records
    from engine.models import create_model, save_checkpoint
    from engine.runner.evaluate import evaluate_model
    from engine.runner.ingest import finish_run, start_run, write_dataset, write_model
    from engine.store import ResultWriter
    from engine.store.summaries import refresh_summaries

    out = tmp_path_factory.mktemp("db")
    db = out / "fixture.duckdb"
    records, classes = load_records(smear_spec)
    test_ds = ImageDataset(smear_spec, "test", records=records, classes=classes)
    with ResultWriter(db) as w:
        run_id = start_run(w, "test", {"fixture": True})
        dataset_id = write_dataset(w, smear_spec, records, classes)
        for seed, init in ((1, "random"), (2, "random-b")):
            torch.manual_seed(seed)
            model, info = create_model("vit_demo", len(classes))
            sha = save_checkpoint(out / f"m{seed}.safetensors", model, info, {"init": init})
            model_id = write_model(w, dataset_id=dataset_id, info=info, init=init,
                                   checkpoint=str(out / f"m{seed}.safetensors"), sha256=sha, val_accuracy=None,
                                   test_accuracy=0.25, hparams={}, history=[])
            res = evaluate_model(model.eval(), info, test_ds, run_id=run_id, dataset_id=dataset_id,
                                 model_id=model_id, methods={"attention": {}, "chefer_gae": {}},
                                 metrics={"pointing_game": {}, "iou_top5": {}, "insertion_auc": {"n_steps": 4},
                                          "deletion_auc": {"n_steps": 4}}, progress=False)
            w.replace_rows("predictions", res.predictions)
            w.replace_rows("explanations", res.explanations)
            w.replace_rows("scores", res.scores)
            w.replace_rows("curves", res.curves)
            refresh_summaries(w, dataset_id, model_id)
        finish_run(w, run_id, "finished")
    return db
