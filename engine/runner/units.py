"""The units of work an executor runs: train, predict, evaluate a chunk, sanity-check.

Each unit is a plain function of picklable arguments (a dataset spec as JSON, a validated model entry,
a checkpoint path, the chunk) that returns a small dataclass (:mod:`.results`) and never touches the
database, so the local executor and Ray workers run the same code and only the driver writes
(:mod:`engine.runner.run`).  Datasets and checkpoints are re-opened in the worker and cached per process.
"""
from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..common.precision import stage_precision
from ..data import DatasetError, DatasetSpec, ImageDataset, collate_samples, fingerprint, load_records
from ..explain import METHODS
from ..metrics.sanity import mprt
from ..models import (
    ImageSource,
    ModelInfo,
    PretrainConfig,
    TrainConfig,
    create_model,
    fine_tune,
    grid_search,
    load_checkpoint,
    normalise,
    predict,
    pretrain_backbone,
    read_sidecar,
    save_checkpoint,
)
from ..models.checkpoint import file_sha256
from ..models.evaluation import report_from_probs
from ..models.given import load_given
from ..store import canonical_json
from .evaluate import evaluate_model
from .experiment import ModelEntry
from .jobs import Chunk, given_digest
from .results import ChunkResult, Failure, PredictResult, SanityResult, TrainMeta, TrainResult, first_line
from .validate import model_input_size

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=8)
def _dataset(spec_json: str) -> tuple[DatasetSpec, list, tuple]:
    spec = DatasetSpec.from_dict(json.loads(spec_json))
    records, classes = load_records(spec)
    return spec, records, classes


@functools.lru_cache(maxsize=32)
def _subset(spec_json: str, ids: tuple[str, ...] | None, split: str | None) -> tuple[ImageDataset, list[Failure]]:
    """The images ``ids`` (or a whole split), with the ones that fail to load left out and reported."""
    spec, records, classes = _dataset(spec_json)
    recs = [r for r in records if (ids is None or r.image_id in ids) and (split is None or r.split == split)]
    ds = ImageDataset(spec, records=recs, classes=classes)
    good, failures = [], []
    for i, r in enumerate(recs):
        try:
            ds[i]
            good.append(r)
        except DatasetError as exc:
            if getattr(spec, "strict", False):
                raise
            failures.append(Failure(r.image_id, "load", str(exc)))
    return ImageDataset(spec, records=good, classes=classes), failures


@functools.lru_cache(maxsize=2)
def _checkpoint(path: str, sha256: str):
    model, info, side = load_checkpoint(path)
    if side["sha256"] != sha256:
        raise ValueError(f"{path}: checkpoint changed since it was registered (sha256 {side['sha256'][:12]}, "
                         f"expected {sha256[:12]})")
    return model, info, side


def check_input_size(spec: DatasetSpec, name: str, weights: str | None = None) -> None:
    """Refuse, before training, a dataset whose ``input_size`` is not the model's input size (a timm
    ViT asserts on it mid-run).  The message names both keys."""
    size = model_input_size(name, weights)
    if size is not None and size != spec.input_size:
        raise DatasetError(f"dataset {spec.name!r}: input_size = {spec.input_size} but model {name!r} takes "
                           f"{size} px inputs (its img_size); set input_size = {size} in the dataset block, or "
                           f"give this dataset a model built for {spec.input_size} px")


def train_unit(spec_json: str, entry: ModelEntry, seed: int, ckpt_path: str, device: str,
               progress: bool, precision: str = "fp32") -> TrainResult:
    """Build (and unless ``init == 'random'`` fine-tune) one model; write its checkpoint."""
    t0 = time.monotonic()
    precision = stage_precision("train", precision)  # what fine-tuning applies, and what is recorded
    spec, records, classes = _dataset(spec_json)
    check_input_size(spec, entry.name, entry.weights)
    path = Path(ckpt_path)
    kwargs = {"pretrained": entry.pretrained, **({"weights": entry.weights} if entry.weights else {})}
    trials: list[dict] = []
    failures: list[Failure] = []
    if entry.init == "random":
        torch.manual_seed(seed + 1)
        model, info = create_model(entry.name, len(classes), pretrained=False)
        meta = TrainMeta(init="random", strategy="random", hparams={"seed": seed + 1})
    elif entry.as_given:  # evaluated as it is: its own head, in the dataset's class order; nothing trained
        model, info = load_given(entry.name, list(classes), weights=entry.weights, hub=bool(entry.pretrained),
                                 class_order=entry.class_order)
        meta = TrainMeta(init="given", strategy=info.strategy,
                         hparams={"weights": entry.weights or f"hub:{info.timm_name}",
                                  "weights_sha256": given_digest(entry), "class_order": entry.class_order})
    else:
        (train_ds, bad_train), (val_ds, bad_val) = (_subset(spec_json, None, s) for s in ("train", "val"))
        failures = bad_train + bad_val  # training goes on without them
        if len(train_ds) == 0 or len(val_ds) == 0:
            why = f"; {len(failures)} images could not be read, e.g. {failures[0].reason}" if failures else ""
            raise DatasetError(f"{spec.name}: needs images in both the train and val splits to fine-tune "
                               f"(train {len(train_ds)}, val {len(val_ds)}{why})")
        pretraining = None
        if entry.pretrain:
            backbone = _pretrained_backbone(entry, spec, train_ds, seed, path.parent, device, progress)
            kwargs = {"pretrained": False, "weights": str(backbone)}
            pretraining = pretraining_summary(backbone)
        cfg = TrainConfig(**{"seed": seed, **entry.train})

        def build():
            return create_model(entry.name, len(classes), **kwargs)

        resume = str(path) + ".train-state"  # per-epoch state: an interrupted run resumes from its last epoch
        if entry.grid:  # the best trial's model is kept (not retrained on train + val)
            found = grid_search(build, train_ds, val_ds, cfg, entry.grid, device=device, progress=progress,
                                precision=precision, resume=resume)
            model, info, cfg, result, trials = found.model, found.info, found.config, found.result, found.trials
        else:
            torch.manual_seed(seed)
            model, info = build()
            result = fine_tune(model, info, train_ds, val_ds, cfg, device=device, progress=progress,
                               precision=precision, resume=resume)
        hparams = {**cfg.to_dict(), "precision": precision, **({"pretraining": pretraining} if pretraining else {})}
        meta = TrainMeta(init="trained", strategy=info.strategy, hparams=hparams,
                         metrics={"val_accuracy": result.best_val_accuracy, "best_epoch": result.best_epoch},
                         history=result.history)
    sidecar = {**meta.to_dict(), "entry": {**entry.model_dump(), "key": entry.key}}
    sha = save_checkpoint(path, model.cpu(), info, sidecar)
    for state in path.parent.glob(f"{path.name}.train-state*"):  # the model is saved: no resuming needed
        state.unlink(missing_ok=True)
    return TrainResult(str(path), sha, info, meta, trials, failures, time.monotonic() - t0)


def _pretrained_backbone(entry: ModelEntry, spec: DatasetSpec, train_ds: ImageDataset, seed: int, ckpt_dir: Path,
                         device: str, progress: bool) -> Path:
    """Offline pretraining (cached by its config hash) before fine-tuning: ``pretrain_source`` is
    'generated' (the seeded synthetic source set), 'target' (this dataset's *training split*, labels
    not used: never its validation or test images) or a folder of images."""
    src = entry.pretrain_source
    if src == "target":
        if entry.pretrain == "supervised":
            raise DatasetError(f"{spec.name}: pretrain = 'supervised' needs a labelled source; pretrain_source "
                               f"'target' is the training split without its labels (use 'generated' or a folder)")
        images = torch.stack([train_ds[i].image for i in range(len(train_ds))])
        source = ImageSource(images, {"dataset": spec.name, "split": "train",
                                      "fingerprint": fingerprint(train_ds.records, spec)})
    else:
        source = "synthetic" if src == "generated" else src
    cfg = PretrainConfig(**{"seed": seed, **entry.pretrain_params})
    return pretrain_backbone(entry.name, entry.pretrain, source, cfg, cache_dir=ckpt_dir / "pretrained",
                             device=device, progress=progress)


def pretraining_summary(backbone: Path) -> dict:
    """What the models table keeps of a pretrained backbone's sidecar: strategy, source, steps, time,
    the loss at the start and over the last 10 steps, and DINO's collapse verdict."""
    side = json.loads(Path(str(backbone) + ".json").read_text())
    losses = side.get("losses") or []
    tail = losses[-10:]
    return {"file": Path(backbone).name, "strategy": side.get("strategy"),
            "source": (side.get("source") or {}).get("kind"), "steps": (side.get("config") or {}).get("steps"),
            "seconds_wall": side.get("seconds_wall"),
            "loss_first": losses[0] if losses else None, "loss_last": sum(tail) / len(tail) if tail else None,
            "collapse": side.get("collapse")}


def reuse_checkpoint(ckpt_path: str, repair: bool = True) -> TrainResult | None:
    """The train result of an existing, intact checkpoint (None when it must be trained).

    A checkpoint whose bytes no longer match the sha256 of its sidecar (or whose sidecar cannot be
    read) is moved aside to ``<file>.stale-<time>`` with a warning and trained again, instead of being
    re-used by every later job (each of which would fail on the mismatch); ``repair=False`` (a dry run)
    only reports it as to be trained."""
    path = Path(ckpt_path)
    side_path = Path(str(path) + ".json")
    if not (path.exists() and side_path.exists()):
        return None
    try:
        side = read_sidecar(path)
        ok = isinstance(side, dict) and "sha256" in side and "model" in side and file_sha256(path) == side["sha256"]
        why = "its bytes do not match the sha256 in its sidecar"
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        ok, why = False, f"its sidecar cannot be read ({type(exc).__name__})"
    if not ok and not repair:
        return None
    if not ok:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for p in (path, side_path):
            p.replace(p.with_name(f"{p.name}.stale-{stamp}"))
        log.warning("checkpoint %s: %s; moved aside to %s.stale-%s and trained again", path, why, path.name, stamp)
        return None
    return TrainResult(str(path), side["sha256"], ModelInfo(**side["model"]), TrainMeta.from_sidecar(side))


def predict_unit(spec_json: str, ckpt: str, sha256: str, ids: tuple[str, ...], device: str,
                 batch_size: int, precision: str = "fp32", *, run_id: str, dataset_id: str,
                 model_id: str) -> PredictResult:
    """Class probabilities for the test split plus the scored images (``predictions`` rows, ids included);
    test-split classification metrics."""
    spec, records, classes = _dataset(spec_json)
    model, info, _ = _checkpoint(ckpt, sha256)
    wanted = tuple(sorted({r.image_id for r in records if r.split == "test"} | set(ids)))
    ds, failures = _subset(spec_json, wanted, None)
    out = predict(model, info, ds, device, batch_size, precision=stage_precision("predict", precision))
    probs = out["probs"]
    df = pd.DataFrame({"run_id": run_id, "dataset_id": dataset_id, "model_id": model_id,
                       "image_id": out["image_ids"], "label": out["labels"].astype(int),
                       "pred": probs.argmax(1).astype(int) if len(probs) else [],
                       "confidence": probs.max(1) if len(probs) else [],
                       "probs": [p.astype(np.float32) for p in probs], "precision": out["precision"]})
    test = np.array([r.split == "test" for r in ds.records], dtype=bool)
    metrics = {}
    if test.any():
        rep = report_from_probs(out["labels"][test], probs[test], loss=out["loss"])
        metrics = {k: rep[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "auroc", "confusion", "n")}
    return PredictResult(df, metrics, failures)


def chunk_unit(spec_json: str, ckpt: str, sha256: str, ids: tuple[str, ...], chunk: Chunk, metrics: dict,
               regions: list[str] | None, device: str, batch_size: int, progress: bool,
               precision: str = "fp32", *, run_id: str, dataset_id: str, model_id: str) -> ChunkResult:
    """Explain the scored images with the chunk's methods and score the chunk's (method, metric) jobs
    (rows with their run, dataset and model ids)."""
    model, info, _ = _checkpoint(ckpt, sha256)
    ds, _ = _subset(spec_json, ids, None)  # load failures are reported once, by the predict unit
    res = evaluate_model(model, info, ds, run_id=run_id, dataset_id=dataset_id, model_id=model_id,
                         methods=chunk.variants(), metrics=metrics, metrics_for=chunk.metrics_for, regions=regions,
                         device=device, batch_size=batch_size, progress=progress, precision=precision)
    return ChunkResult(res.explanations, res.scores, res.curves, res.failures, len(ds), degenerate=res.degenerate,
                       region_stats=res.region_stats, target_maps=res.target_maps, target_scores=res.target_scores)


def sanity_unit(spec_json: str, ckpt: str, sha256: str, ids: tuple[str, ...], variants: list[tuple[str, dict]],
                seed: int, device: str, precision: str = "fp32", *, run_id: str, dataset_id: str,
                model_id: str) -> SanityResult:
    """MPRT (cascading randomisation) of each method on the given images (``sanity`` rows, ids included)."""
    model, info, _ = _checkpoint(ckpt, sha256)
    ds, _ = _subset(spec_json, ids, None)
    if len(ds) == 0:
        return SanityResult(pd.DataFrame())
    batch = collate_samples([ds[i] for i in range(len(ds))])
    x = normalise(batch["image"].to(device), info)
    params = {name: p for name, p in variants}
    failures = []
    try:
        rows = mprt(model.to(device), x, params, seed=seed, precision=stage_precision("explain", precision))
    except Exception as exc:
        rows = []
        failures.append(Failure("*", "sanity", first_line(exc)))
    df = pd.DataFrame([{"run_id": run_id, "dataset_id": dataset_id, "model_id": model_id,
                        "method": r["method"], "method_version": METHODS[r["method"]].version,
                        "method_params": canonical_json(params[r["method"]]), "step": r["step"], "layer": r["layer"],
                        "image_id": batch["image_id"][r["image"]],
                        "spearman": None if np.isnan(r["spearman"]) else r["spearman"], "ssim": r["ssim"],
                        "precision": r["precision"]}
                       for r in rows])
    return SanityResult(df, failures)
