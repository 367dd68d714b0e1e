"""Rows describing a run, a dataset, a model and the registries, written through the ResultWriter."""
from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import uuid
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..data import DatasetSpec, Record, fingerprint, image_size, region_names
from ..data.shortcut import dataset_shortcut
from ..explain import METHODS
from ..metrics import METRICS
from ..metrics.quality import model_quality
from ..metrics.sanity import MPRT
from ..metrics.summaries import DEGENERATE_COLUMNS, SCORE_COLUMNS, SUMMARY_COLUMNS, summarise
from ..models import ModelInfo
from ..store import ResultWriter, canonical_json, identity, utc_now

PACKAGES = ("torch", "timm", "numpy", "duckdb", "streamlit")


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def start_run(w: ResultWriter, kind: str, config: dict) -> str:
    run_id = f"{kind}-{utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    w.upsert("runs", {"run_id": run_id, "kind": kind, "status": "running", "started_at": utc_now(),
                      "finished_at": None, "host": platform.node(), "git_commit": git_commit(),
                      "versions": versions(), "config": config})
    write_registries(w)
    return run_id


def finish_run(w: ResultWriter, run_id: str, status: str, counts: dict | None = None) -> None:
    """Close the run opened by :func:`start_run`."""
    w.finish_run(run_id, status, counts)


def write_registries(w: ResultWriter) -> None:
    for m in METHODS.values():
        w.upsert("methods", {"method": m.name, "version": m.version, "needs_grads": m.needs_grads,
                             "reference": m.reference, "baseline": m.baseline})
    for m in [*METRICS.values(), MPRT]:
        w.upsert("metrics", {"metric": m.name, "version": m.version, "kind": m.kind,
                             "higher_is_better": m.higher_is_better, "reference": m.reference})


def write_dataset(w: ResultWriter, spec: DatasetSpec, records: list[Record], classes: tuple[str, ...],
                  fp: str | None = None) -> str:
    """Dataset and image rows; returns the dataset id (:func:`engine.store.dataset_id`; ``fp``: the
    fingerprint when the caller already has it; it reads every annotation file)."""
    fp = fp or fingerprint(records, spec)
    did = identity.dataset_id(spec.name, fp)
    root = Path(spec.root).resolve()
    w.upsert("datasets", {"dataset_id": did, "name": spec.name, "root": str(root), "fingerprint": fp,
                          "classes": list(classes), "input_size": spec.input_size, "resize_mode": spec.resize,
                          "n_images": len(records), "spec": spec.to_dict(), "regions": list(spec.region_list),
                          "mask_regions": list(spec.mask_region_list), "box_regions": list(spec.box_region_list),
                          "box_from_mask": spec.box_from_mask})

    def rel(p):
        return None if p is None else str(p.relative_to(root))

    rows = []
    for r in records:
        wh = image_size(r.image_path) or (None, None)  # header only (DICOM included)
        rows.append((did, r.image_id, r.split, r.label, classes[r.label], rel(r.image_path),
                     rel(r.mask_path), rel(r.boxes_path), wh[0], wh[1], region_names(r, spec)))
    w.replace_rows("images", pd.DataFrame(rows, columns=[
        "dataset_id", "image_id", "split", "label", "label_name", "path", "mask_path", "boxes_path",
        "width", "height", "regions"]))
    write_shortcut(w, did, spec, records, classes)
    return did


def write_shortcut(w: ResultWriter, dataset_id: str, spec: DatasetSpec, records: list[Record],
                   classes: tuple[str, ...], seed: int = 0) -> bool:
    """The shortcut check of a dataset (:mod:`engine.data.shortcut`: metadata alone predicting the label),
    once per dataset id (its fingerprint covers the files); returns whether it was computed now."""
    if len(w.rows_of("shortcut", dataset_id, ["dataset_id"])):
        return False
    res = dataset_shortcut(spec, records, classes, seed=seed)
    w.replace_rows("shortcut", pd.DataFrame([{
        "dataset_id": dataset_id, "n_train": res.n_train, "n_test": res.n_test, "features": list(res.features),
        "candidates": list(res.candidates), "balanced_accuracy": res.balanced_accuracy, "ci_low": res.ci_low,
        "ci_high": res.ci_high, "chance": res.chance, "flagged": res.flagged, "rule": res.rule,
        "reason": res.reason, "test_predictions": canonical_json(res.test_predictions)}]))
    return True


def pretraining_of(strategy: str | None) -> str:
    """The pretraining field: what the backbone was before fine-tuning ('none' for random weights)."""
    return "none" if strategy in (None, "", "random") else strategy


def fine_tuning_of(init: str | None) -> str:
    """The fine-tuning field: 'untrained' for a random-weights model, 'as given' for weights evaluated as
    they are (nothing trained here), else 'trained'."""
    return {"random": "untrained", "given": "as given"}.get(init or "", "trained")


def write_model(w: ResultWriter, *, dataset_id: str, info: ModelInfo, init: str, checkpoint: str, sha256: str,
                val_accuracy: float | None, test_accuracy: float | None, hparams: dict, history: list,
                label: str | None = None, arch: str | None = None, strategy: str | None = None,
                test: dict | None = None, precision: str | None = None) -> str:
    """The models row; returns its id (:func:`engine.store.model_id`).
    ``test``: the test-split classification report (balanced accuracy, macro-F1, AUROC, confusion);
    ``precision``: of fine-tuning and the test predictions (fp32 / bf16)."""
    mid = identity.model_id(info.name, init, sha256, label)
    test = test or {}
    w.upsert("models", {"model_id": mid, "dataset_id": dataset_id, "name": info.name,
                        "timm_name": info.timm_name, "init": init, "checkpoint": checkpoint, "sha256": sha256,
                        "input_size": info.input_size, "grid_h": info.grid[0], "grid_w": info.grid[1],
                        "num_prefix_tokens": info.num_prefix_tokens, "val_accuracy": val_accuracy,
                        "test_accuracy": test_accuracy, "hparams": {**hparams, "model": asdict(info)},
                        "history": {"epochs": history}, "arch": arch, "strategy": strategy,
                        "pretraining": pretraining_of(strategy), "fine_tuning": fine_tuning_of(init),
                        "test_balanced_accuracy": test.get("balanced_accuracy"), "test_macro_f1": test.get("macro_f1"),
                        "test_auroc": test.get("auroc"),
                        "confusion": canonical_json(test["confusion"]) if test.get("confusion") else None,
                        "precision": precision})
    return mid


def refresh_summaries(w: ResultWriter, dataset_id: str, model_id: str, seed: int = 0,
                      methods: set[tuple[str, str]] | None = None,
                      pairwise_metrics: set[str] | None = None) -> tuple[int, int]:
    """Rewrite the summary + pairwise rows of one (dataset, model) from its scores; returns their counts
    (``methods``, ``pairwise_metrics``: see :func:`~engine.metrics.summaries.summarise`)."""
    summary, pairwise = summarise(w.scores_of(dataset_id, model_id, SCORE_COLUMNS), dataset_id, model_id,
                                  seed=seed, methods=methods, pairwise_metrics=pairwise_metrics,
                                  degenerate=w.rows_of("degenerate_maps", dataset_id, DEGENERATE_COLUMNS, model_id),
                                  previous=w.rows_of("summary", dataset_id, SUMMARY_COLUMNS, model_id))
    if summary.empty and pairwise.empty:
        return 0, 0
    w.replace_rows("summary", summary)
    w.replace_rows("pairwise", pairwise)
    return len(summary), len(pairwise)


def refresh_quality(w: ResultWriter, dataset_id: str, seed: int = 0) -> int:
    """Rewrite the ``model_quality`` rows of every model of a dataset from its test-split predictions
    (a model's random-weights twin may arrive after it); returns their count."""
    models = w.rows_of("models", dataset_id, ["dataset_id", "model_id", "name", "init"])
    preds = w.rows_of("predictions", dataset_id, ["dataset_id", "model_id", "image_id", "label", "pred"])
    split = w.rows_of("images", dataset_id, ["image_id", "split"])
    preds = preds.merge(split[split.split == "test"][["image_id"]], on="image_id")
    rows = model_quality(preds, models, seed=seed)
    return w.replace_rows("model_quality", rows) if len(rows) else 0
