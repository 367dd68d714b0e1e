"""Real white-blood-cell data (../shared/data/wbc) through the same loader, methods and metrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_data

from engine.data import DatasetSpec, ImageDataset, load_records
from engine.models import TrainConfig, create_model, fine_tune
from engine.runner.evaluate import evaluate_model

pytestmark = pytest.mark.slow  # end-to-end: training on the real WBC data


def wbc_spec(root, dataset: int) -> DatasetSpec:
    return DatasetSpec(
        name=f"wbc{dataset}", root=str(root), labels=f"Class Labels of Dataset {dataset}.csv",
        id_column=("image ID",), label_column=("class label", "class"),  # the two tables spell it differently
        image_template=f"Dataset {dataset}/{{num:03d}}.bmp", mask_template=f"Dataset {dataset}/{{num:03d}}.png",
        mask_regions=(("mask", (255,)), ("mask_cell", (128, 255))), box_from_mask="mask",
        input_size=64, resize="letterbox")


def test_both_label_tables_load():
    root = shared_data("wbc")
    r1, c1 = load_records(wbc_spec(root, 1))
    r2, c2 = load_records(wbc_spec(root, 2))
    assert len(r1) == 300 and len(r2) == 100
    assert c1 == ("1", "2", "3", "4", "5")
    assert [r.split for r in r1 if r.label == 4] == ["train"]  # the single basophil stays in train
    assert all(" " in str(r.image_path) for r in r1[:3])  # paths with spaces


def test_regions_are_nested_and_aligned():
    root = shared_data("wbc")
    ds = ImageDataset(wbc_spec(root, 1), "test")
    for i in range(5):
        s = ds[i]
        nuc, cell, box = s.regions["mask"], s.regions["mask_cell"], s.regions["box_from_mask"]
        assert s.size == (120, 120) and s.image.shape == (3, 64, 64)
        assert 0.01 < nuc.float().mean() < 0.6
        assert (nuc & ~cell).sum() <= 2  # nucleus inside the cell (up to resampling at the rim)
        assert (nuc & ~box).sum() == 0  # the derived box encloses the nucleus


def test_brief_training_then_scores():
    root = shared_data("wbc")
    spec = wbc_spec(root, 1)
    records, classes = load_records(spec)
    tr, va, te = (ImageDataset(spec, s, records=records, classes=classes) for s in ("train", "val", "test"))
    torch.manual_seed(0)
    model, info = create_model("vit_demo", len(classes))
    fine_tune(model, info, tr, va, TrainConfig(epochs=2, batch_size=32, warmup_epochs=1), progress=False)
    res = evaluate_model(model, info, te, run_id="t", dataset_id="wbc1", model_id="m",
                         methods={"attention": {}, "chefer_gae": {}}, metrics={"pointing_game": {}, "iou_top5": {}},
                         progress=False)
    assert len(res.explanations) == len(te) * 2 and not res.failures  # images x methods
    assert len(res.scores) == len(te) * 2 * 2 * 3  # images x methods x metrics x regions
    vals = res.scores["value"].to_numpy(dtype=float)
    assert np.isfinite(vals).all() and (vals >= 0).all() and (vals <= 1).all()
    assert set(res.scores["region"]) == {"mask", "mask_cell", "box_from_mask"}
