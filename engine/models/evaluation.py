"""Classification metrics of a model on a split: accuracy, balanced accuracy, macro-F1, macro
one-vs-rest AUROC, confusion matrix, and per-image predictions with probabilities.

Conventions (the same as scikit-learn's, checked by hand in the tests):

* balanced accuracy: mean recall over the classes *present* in the true labels;
* macro-F1: mean F1 over every class (present in the true labels or predicted); a class with no
  true and no predicted image has F1 0 but is skipped here, since it says nothing;
* AUROC: one-vs-rest per class with both positives and negatives among the true labels (ties
  count one half: the Mann-Whitney statistic), averaged; NaN when no class qualifies;
* confusion matrix: ``cm[true][pred]``, every class of the task in order, as a list of lists.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata

from ..common.precision import autocast, resolve_precision
from ..data import collate_samples
from .factory import ModelInfo, normalise


@torch.no_grad()
def predict(model: torch.nn.Module, info: ModelInfo, ds, device="cpu", batch_size: int = 128,
            precision: str | None = None) -> dict:
    """``{"probs": (N, K) float64, "labels": (N,), "image_ids": [...], "loss": mean cross-entropy,
    "precision": the precision the forwards ran at}``.

    The model is moved to ``device`` (inputs and weights on one device); ``precision`` ``bf16``
    autocasts the forward pass (None: the device's default); logits are cast to float32 before the
    softmax and the loss, so probabilities are float32 / float64 whatever the precision."""
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    model.to(device).eval()
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate_samples,
                                         num_workers=0, pin_memory=device.type == "cuda")
    probs, labels, ids, loss = [], [], [], 0.0
    for batch in loader:
        x = normalise(batch["image"].to(device, non_blocking=True), info)
        y = batch["label"].to(device)
        with autocast(device, precision):
            logits = model(x)
        logits = logits.float()
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        probs.append(logits.softmax(1).double().cpu().numpy())
        labels.append(batch["label"].numpy())
        ids += list(batch["image_id"])
    n = len(ids)
    k = info.num_classes
    return {"probs": np.concatenate(probs) if probs else np.zeros((0, k)),
            "labels": np.concatenate(labels) if labels else np.zeros(0, np.int64),
            "image_ids": ids, "loss": loss / n if n else float("nan"), "precision": precision}


def confusion_matrix(labels, preds, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(labels, np.int64), np.asarray(preds, np.int64)), 1)
    return cm


def balanced_accuracy(cm: np.ndarray) -> float:
    support = cm.sum(1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float((np.diag(cm)[present] / support[present]).mean())


def macro_f1(cm: np.ndarray) -> float:
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1), cm.sum(0)
    used = (support + predicted) > 0
    if not used.any():
        return float("nan")
    f1 = 2 * tp[used] / (support[used] + predicted[used])
    return float(f1.mean())


def auroc_binary(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n+ n-)); NaN unless both classes occur."""
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks: ties count one half
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auroc(labels: np.ndarray, probs: np.ndarray) -> tuple[float, list[float]]:
    """Mean one-vs-rest AUROC over the classes that have positives and negatives; per-class values."""
    per = [auroc_binary(np.asarray(labels) == c, probs[:, c]) for c in range(probs.shape[1])]
    valid = [a for a in per if not math.isnan(a)]
    return (float(np.mean(valid)) if valid else float("nan")), per


def report_from_probs(labels, probs, image_ids=None, loss: float = float("nan"), classes=None) -> dict:
    labels = np.asarray(labels, np.int64)
    probs = np.asarray(probs, float)
    k = probs.shape[1]
    preds = probs.argmax(1) if len(labels) else np.zeros(0, np.int64)
    cm = confusion_matrix(labels, preds, k)
    auc, per_class = macro_auroc(labels, probs)
    ids = list(image_ids) if image_ids is not None else [str(i) for i in range(len(labels))]
    return {
        "n": int(len(labels)),
        "accuracy": float((preds == labels).mean()) if len(labels) else float("nan"),
        "balanced_accuracy": balanced_accuracy(cm),
        "macro_f1": macro_f1(cm),
        "auroc": auc,
        "auroc_per_class": per_class,
        "confusion": cm.tolist(),
        "loss": float(loss),
        "classes": list(classes) if classes is not None else list(range(k)),
        "predictions": [{"image_id": i, "label": int(y), "pred": int(p), "correct": bool(y == p),
                         "probs": [float(v) for v in pr]}
                        for i, y, p, pr in zip(ids, labels, preds, probs)],
    }


def classification_report(model: torch.nn.Module, info: ModelInfo, ds, device="cpu", batch_size: int = 128,
                          precision: str | None = None) -> dict:
    """Metrics of ``model`` on ``ds``: accuracy, balanced_accuracy, macro_f1, auroc (macro one-vs-rest),
    auroc_per_class, confusion (rows = true), loss (mean cross-entropy), n, classes, and
    ``predictions``: one dict per image (image_id, label, pred, correct, probs)."""
    out = predict(model, info, ds, device, batch_size, precision=precision)
    return report_from_probs(out["labels"], out["probs"], out["image_ids"], out["loss"],
                             getattr(ds, "classes", None))
