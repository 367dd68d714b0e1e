"""The embedded demo: generate data, fine-tune, explain, score, write the database.

Two models are scored on the held-out test split: the fine-tuned demo ViT and the same
architecture with random weights (the sanity baseline every localisation number needs).
Checkpoints are cached under ``data/checkpoints`` by a hash of everything that determines them,
so a second demo run re-uses the trained model.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data import DatasetSpec, ImageDataset, collate_samples, fingerprint, load_records
from ..data.synthetic import SmearConfig, generate_blood_smear
from ..explain import METHODS
from ..metrics.sanity import mprt
from ..models import (TrainConfig, create_model, evaluate_accuracy, fine_tune, load_checkpoint, normalise,
                      read_sidecar, save_checkpoint)
from ..store import ResultWriter, canonical_json
from ..store.summaries import refresh_summaries
from .evaluate import evaluate_model
from .ingest import finish_run, start_run, write_dataset, write_model

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# every registered method, with the parameters the demo uses (defaults unless stated)
DEMO_METHODS = {"attention": {}, "rollout": {}, "grad_rollout": {}, "chefer_gae": {}, "chefer_lrp": {},
                "gradcam_attn": {}, "gradcam": {}, "saliency": {}, "smoothgrad": {}, "integrated_gradients": {},
                "occlusion": {}, "baseline_random": {}, "baseline_centre": {}}
DEMO_METRICS = {"pointing_game": {}, "iou_top5": {}, "energy_pg": {}, "mass_accuracy": {}, "rank_accuracy": {},
                "auprc": {}, "insertion_auc": {"n_steps": 12}, "deletion_auc": {"n_steps": 12}}


@dataclass(frozen=True)
class DemoConfig:
    quick: bool = False
    seed: int = 0
    model: str = "vit_demo"
    smear: SmearConfig = field(default_factory=SmearConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    methods: dict = field(default_factory=lambda: dict(DEMO_METHODS))
    metrics: dict = field(default_factory=lambda: dict(DEMO_METRICS))
    batch_size: int = 64
    mprt_images: int = 8  # test images for the model-parameter randomisation test (trained model)

    @classmethod
    def make(cls, quick: bool, seed: int = 0) -> "DemoConfig":
        if quick:
            # CI-sized: fewer images and epochs, and cheaper Captum settings (still every method)
            methods = {**DEMO_METHODS, "integrated_gradients": {"n_steps": 8}, "smoothgrad": {"nt_samples": 4}}
            metrics = {**DEMO_METRICS, "insertion_auc": {"n_steps": 6}, "deletion_auc": {"n_steps": 6}}
            return cls(quick=True, seed=seed, methods=methods, metrics=metrics, mprt_images=4,
                       smear=SmearConfig(n_train=800, n_val=120, n_test=48, seed=seed),
                       train=TrainConfig(epochs=10, lr=2e-3, seed=seed))
        # the full demo keeps within ~8 minutes on 2 cores: Captum settings below their library defaults
        methods = {**DEMO_METHODS, "integrated_gradients": {"n_steps": 24}, "smoothgrad": {"nt_samples": 8}}
        return cls(quick=False, seed=seed, methods=methods, smear=SmearConfig(seed=seed),
                   train=TrainConfig(epochs=20, lr=2e-3, seed=seed))


def demo_spec(root: Path) -> DatasetSpec:
    return DatasetSpec(
        name="demo_blood_smear", root=str(root), labels="labels.csv", image_template="images/{id}.png",
        split_column="split", mask_template="masks/{id}.png", mask_regions=(("mask", (128, 255)),),
        boxes_template="annotations/{id}.xml", box_classes=("WBC",), input_size=64, resize="resize",
        classes=("lymphocyte", "neutrophil", "monocyte", "eosinophil"))


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _trained_model(cfg: DemoConfig, spec, records, classes, fp: str, ckpt_dir: Path, device: str, progress: bool):
    """Fine-tune (or load the cached checkpoint of) the demo model (``fp``: the dataset fingerprint)."""
    path = ckpt_dir / f"{cfg.model}-trained-{_key(cfg.model, asdict(cfg.train), fp, torch.__version__)}.safetensors"
    if path.exists() and Path(str(path) + ".json").exists():
        log.info("re-using trained checkpoint %s", path)
        model, info, side = load_checkpoint(path)
        return model, info, side, path
    train_ds, val_ds, test_ds = (ImageDataset(spec, s, records=records, classes=classes)
                                 for s in ("train", "val", "test"))
    torch.manual_seed(cfg.seed)
    model, info = create_model(cfg.model, len(classes))
    result = fine_tune(model, info, train_ds, val_ds, cfg.train, device=device, progress=progress)
    test_acc, _ = evaluate_accuracy(model, info, test_ds, device)
    meta = {"init": "trained", "hparams": cfg.train.to_dict(), "data_fingerprint": fp,
            "metrics": {"val_accuracy": result.best_val_accuracy, "test_accuracy": test_acc,
                        "best_epoch": result.best_epoch}, "history": result.history}
    save_checkpoint(path, model.cpu(), info, meta)
    return model.eval(), info, read_sidecar(path), path


def _random_model(cfg: DemoConfig, classes, ckpt_dir: Path):
    """The same architecture with seeded random weights (the 'random init' baseline)."""
    path = ckpt_dir / f"{cfg.model}-random-{_key(cfg.model, cfg.seed, len(classes), torch.__version__)}.safetensors"
    if path.exists() and Path(str(path) + ".json").exists():
        model, info, side = load_checkpoint(path)
        return model, info, side, path
    torch.manual_seed(cfg.seed + 1)
    model, info = create_model(cfg.model, len(classes))
    save_checkpoint(path, model, info, {"init": "random", "hparams": {"seed": cfg.seed + 1}, "metrics": {},
                                        "history": []})
    return model.eval(), info, read_sidecar(path), path


def write_sanity(w, model, info, ds, cfg: DemoConfig, *, run_id, dataset_id, model_id, device) -> int:
    """MPRT (cascading randomisation) on the first ``cfg.mprt_images`` images of ``ds``."""
    batch = collate_samples([ds[i] for i in range(min(cfg.mprt_images, len(ds)))])
    x = normalise(batch["image"].to(device), info)
    rows = mprt(model.to(device), x, cfg.methods, seed=cfg.seed)
    df = pd.DataFrame([{"run_id": run_id, "dataset_id": dataset_id, "model_id": model_id, "method": r["method"],
                        "method_version": METHODS[r["method"]].version,
                        "method_params": canonical_json(cfg.methods[r["method"]]), "step": r["step"],
                        "layer": r["layer"], "image_id": batch["image_id"][r["image"]],
                        "spearman": None if np.isnan(r["spearman"]) else r["spearman"], "ssim": r["ssim"]}
                       for r in rows])
    return w.replace_rows("sanity", df)


def run_demo(db: str | Path, quick: bool = False, seed: int = 0, device: str = "cpu",
             data_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Run the whole demo into ``db``; returns a summary (accuracies and mean scores)."""
    cfg = DemoConfig.make(quick, seed)
    data_dir = Path(data_dir) if data_dir else PROJECT_ROOT / "data"
    root = generate_blood_smear(data_dir / "demo" / ("blood_smear_quick" if quick else "blood_smear"),
                                cfg.smear, progress=progress)
    spec = demo_spec(root)
    records, classes = load_records(spec)
    ckpt_dir = data_dir / "checkpoints"
    summary: dict = {"models": {}}
    with ResultWriter(db) as w:
        run_id = start_run(w, "demo", {"quick": quick, "seed": seed, "device": device, "model": cfg.model,
                                       "smear": asdict(cfg.smear), "train": asdict(cfg.train),
                                       "methods": cfg.methods, "metrics": cfg.metrics})
        test_ds = ImageDataset(spec, "test", records=records, classes=classes)
        fp = fingerprint(records, spec)
        dataset_id = write_dataset(w, spec, records, classes, fp)
        summary["chance"] = {name: float(torch.stack([test_ds[i].regions[name] for i in range(len(test_ds))])
                                         .float().mean()) for name in test_ds[0].regions}
        for init, build in (("trained", lambda: _trained_model(cfg, spec, records, classes, fp, ckpt_dir, device,
                                                               progress)),
                            ("random", lambda: _random_model(cfg, classes, ckpt_dir))):
            model, info, side, path = build()
            test_acc = side.get("metrics", {}).get("test_accuracy")
            if test_acc is None:
                test_acc, _ = evaluate_accuracy(model, info, test_ds, device)
            model_id = write_model(w, dataset_id=dataset_id, info=info, init=init, checkpoint=str(path),
                                   sha256=side["sha256"], val_accuracy=side.get("metrics", {}).get("val_accuracy"),
                                   test_accuracy=test_acc, hparams=side.get("hparams", {}),
                                   history=side.get("history", []))
            res = evaluate_model(model, info, test_ds, run_id=run_id, dataset_id=dataset_id, model_id=model_id,
                                 methods=cfg.methods, metrics=cfg.metrics, device=device,
                                 batch_size=cfg.batch_size, progress=progress)
            w.replace_rows("predictions", res.predictions)
            w.replace_rows("explanations", res.explanations)
            w.replace_rows("scores", res.scores)
            w.replace_rows("curves", res.curves)
            refresh_summaries(w, dataset_id, model_id, seed=seed)
            if init == "trained" and cfg.mprt_images:
                n = write_sanity(w, model, info, test_ds, cfg, run_id=run_id, dataset_id=dataset_id,
                                 model_id=model_id, device=device)
                summary["mprt_rows"] = n
            means = res.scores.groupby(["method", "metric", "region"])["value"].mean()
            summary["models"][model_id] = {"init": init, "test_accuracy": test_acc,
                                           "scores": {"/".join(k): float(v) for k, v in means.items()}}
            log.info("%s: test accuracy %.3f", model_id, test_acc)
        finish_run(w, run_id, "finished")
    summary["run_id"] = run_id
    summary["dataset_id"] = dataset_id
    return summary
