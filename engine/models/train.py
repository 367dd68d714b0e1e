"""Fine-tuning: AdamW, linear warm-up then cosine decay, best epoch on a validation metric.

Options (``TrainConfig``; the defaults reproduce the original behaviour): layer-wise learning-rate
decay (timm's ``param_groups_layer_decay``: block ``i`` of ``L`` gets ``lr * decay ** (L + 1 - i)``),
label smoothing, class-balanced cross-entropy (inverse-frequency weights ``n / (K * n_k)`` from the
training labels), flips / 90-degree rotations on or off, the validation metric that picks the best
epoch (``monitor``) and early stopping after ``patience`` epochs without improvement.  CPU runs are
deterministic for a seed; on CUDA, bf16 autocast and ``channels_last``.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.optim import param_groups_layer_decay
from tqdm import tqdm

from ..common.precision import autocast, resolve_precision
from ..data import ImageDataset, collate_samples
from .evaluation import balanced_accuracy, confusion_matrix, predict
from .factory import ModelInfo, normalise
from .resume import load_state, save_state

log = logging.getLogger(__name__)

MONITORS = ("val_accuracy", "val_balanced_accuracy", "val_loss")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 0.05
    batch_size: int = 64
    warmup_epochs: int = 2
    label_smoothing: float = 0.0
    flips: bool = True  # horizontal and vertical flips
    rot90: bool = True  # rotations by multiples of 90 degrees (fine for smears, not for every modality)
    seed: int = 0
    layer_decay: float | None = None  # e.g. 0.75; None = one learning rate for every layer
    class_balanced: bool = False  # inverse-frequency class weights in the loss
    monitor: str = "val_accuracy"  # picks the best epoch: val_accuracy / val_balanced_accuracy / val_loss
    patience: int = 0  # stop after this many epochs without improvement of `monitor`; 0 = never

    def __post_init__(self):
        if self.monitor not in MONITORS:
            raise ValueError(f"TrainConfig.monitor {self.monitor!r}: expected one of {MONITORS}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(f"TrainConfig.layer_decay {self.layer_decay}: expected a value in (0, 1]")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    best_epoch: int
    best_val_accuracy: float
    history: list[dict]
    best_val_loss: float = float("nan")
    best_val_balanced_accuracy: float = float("nan")
    stopped_early: bool = False
    seconds: float = 0.0
    class_weights: list[float] | None = field(default=None)


def _augment(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Per-sample random flips / 90-degree rotations (square inputs)."""
    b = x.shape[0]
    if cfg.flips:
        fh = torch.rand(b, generator=gen) < 0.5
        fv = torch.rand(b, generator=gen) < 0.5
        x = torch.where(fh.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)
        x = torch.where(fv.view(-1, 1, 1, 1).to(x.device), x.flip(-2), x)
    if cfg.rot90:
        k = torch.randint(0, 4, (b,), generator=gen)
        x = torch.stack([torch.rot90(xi, int(ki), dims=(-2, -1)) for xi, ki in zip(x, k)])
    return x


def _loader(ds, batch_size, shuffle, gen, device):
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen,
                                       collate_fn=collate_samples, num_workers=0,
                                       pin_memory=device.type == "cuda")


@torch.no_grad()
def evaluate_accuracy(model, info: ModelInfo, ds: ImageDataset, device, batch_size: int = 128,
                      precision: str | None = None) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``ds``."""
    out = predict(model, info, ds, device, batch_size, precision=precision)
    if not len(out["labels"]):
        return float("nan"), float("nan")
    return float((out["probs"].argmax(1) == out["labels"]).mean()), out["loss"]


def class_weights(labels: list[int], num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``n / (K * n_k)`` (1 for a balanced set; 0 for a class absent from ``labels``)."""
    counts = torch.bincount(torch.as_tensor(labels, dtype=torch.long), minlength=num_classes).double()
    w = torch.where(counts > 0, len(labels) / (num_classes * counts.clamp(min=1)), torch.zeros_like(counts))
    return w.float()


def _param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """Decay / no-decay groups; with ``layer_decay`` one pair per depth, each with its ``lr_scale``."""
    if cfg.layer_decay is not None:
        skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
        return param_groups_layer_decay(model, cfg.weight_decay, no_weight_decay_list=skip,
                                        layer_decay=cfg.layer_decay)

    def decays(n, p):
        return p.ndim > 1 and "pos_embed" not in n and "cls_token" not in n
    decay = [p for n, p in model.named_parameters() if decays(n, p)]
    no_decay = [p for n, p in model.named_parameters() if not decays(n, p)]
    return [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _better(value: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return not math.isnan(value)
    return value < best if monitor == "val_loss" else value > best


def fine_tune(model: torch.nn.Module, info: ModelInfo, train_ds: ImageDataset, val_ds: ImageDataset,
              cfg: TrainConfig, device: str | torch.device = "cpu", progress: bool = True,
              precision: str | None = None, resume: str | Path | None = None) -> TrainResult:
    """Train in place; the model ends with the weights of its best validation epoch (``cfg.monitor``).

    ``precision``: ``fp32`` or ``bf16`` (autocast); None = the device's default.
    ``resume``: a file that receives the whole training state (weights, optimizer, random generators,
    history, best epoch so far) after every epoch; when it exists for the same config, training goes on
    from the epoch after the last one saved (:mod:`engine.models.resume`), and ends as an uninterrupted
    run would.  The caller deletes it once the model is saved."""
    if len(train_ds) == 0:
        raise ValueError(f"dataset {train_ds.spec.name!r}: no training images")
    if len(val_ds) == 0:
        raise ValueError(f"dataset {val_ds.spec.name!r}: no validation images (the best epoch is chosen on them)")
    t_start = time.perf_counter()
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    groups = _param_groups(model, cfg)
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    weights = class_weights(train_ds.labels, info.num_classes) if cfg.class_balanced else None
    loss_weight = weights.to(device) if weights is not None else None
    loader = _loader(train_ds, cfg.batch_size, True, gen, device)
    steps_per_epoch = max(1, len(loader))
    total, warm = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))

    best_state, best_value, best, history, step, stale = None, None, None, [], 0, 0
    first = 0
    saved = load_state(resume, cfg, model, opt, gen, device) if resume else None
    if saved is not None:
        first, step, history, best_state, best_value, best, stale = saved
        log.info("resuming fine-tuning of %s at epoch %d from %s", info.name, first, resume)
        if cfg.patience and stale >= cfg.patience:
            first = cfg.epochs  # it had stopped early
    bar = tqdm(range(first, cfg.epochs), desc=f"fine-tune {info.name}", disable=not progress, unit="epoch",
               initial=first, total=cfg.epochs)
    for epoch in bar:
        model.train()
        run_loss, seen = 0.0, 0
        for batch in loader:
            lr = lr_at(step)
            for g in opt.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)
            x = _augment(batch["image"], cfg, gen).to(device, non_blocking=True)
            x = normalise(x, info)
            y = batch["label"].to(device)
            with autocast(device, precision):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, weight=loss_weight, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            run_loss += loss.item() * len(y)
            seen += len(y)
            step += 1
        out = predict(model, info, val_ds, device, precision=precision)
        preds = out["probs"].argmax(1)
        val_acc = float((preds == out["labels"]).mean())
        val_bacc = balanced_accuracy(confusion_matrix(out["labels"], preds, info.num_classes))
        rec = {"epoch": epoch, "train_loss": run_loss / seen, "val_loss": out["loss"], "val_accuracy": val_acc,
               "val_balanced_accuracy": val_bacc, "lr": lr}
        history.append(rec)
        log.info("epoch %d: train loss %.4f, val loss %.4f, val acc %.3f, val balanced acc %.3f",
                 epoch, rec["train_loss"], rec["val_loss"], val_acc, val_bacc)
        bar.set_postfix(loss=f"{rec['train_loss']:.3f}", val_acc=f"{val_acc:.3f}")
        if _better(rec[cfg.monitor], best_value, cfg.monitor):
            best_value, best, stale = rec[cfg.monitor], rec, 0
            best_state = copy.deepcopy({k: v.detach().clone() for k, v in model.state_dict().items()})
        else:
            stale += 1
        if resume:
            save_state(resume, cfg, model, opt, gen, epoch, step, history, best_state, best_value, best, stale)
        if cfg.patience and stale >= cfg.patience:
            log.info("early stop after epoch %d: %s has not improved for %d epochs", epoch, cfg.monitor, stale)
            break
    if best_state is None:  # every validation value was NaN: keep the last epoch
        best = history[-1]
    else:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(best["epoch"], best["val_accuracy"], history, best_val_loss=best["val_loss"],
                       best_val_balanced_accuracy=best["val_balanced_accuracy"],
                       stopped_early=len(history) < cfg.epochs, seconds=time.perf_counter() - t_start,
                       class_weights=weights.tolist() if weights is not None else None)
