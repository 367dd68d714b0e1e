"""Fine-tuning: AdamW, linear warm-up then cosine decay, best epoch on validation accuracy."""
from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data import ImageDataset, collate_samples
from .factory import ModelInfo, normalise

log = logging.getLogger(__name__)


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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    best_epoch: int
    best_val_accuracy: float
    history: list[dict]


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
def evaluate_accuracy(model, info: ModelInfo, ds: ImageDataset, device, batch_size: int = 128) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``ds``."""
    device = torch.device(device)
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for batch in _loader(ds, batch_size, False, None, device):
        x = normalise(batch["image"].to(device, non_blocking=True), info)
        y = batch["label"].to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x)
        loss += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    return (correct / n, loss / n) if n else (float("nan"), float("nan"))


def fine_tune(model: torch.nn.Module, info: ModelInfo, train_ds: ImageDataset, val_ds: ImageDataset,
              cfg: TrainConfig, device: str | torch.device = "cpu", progress: bool = True) -> TrainResult:
    """Train in place; the model ends with the weights of its best validation epoch."""
    if len(train_ds) == 0:
        raise ValueError(f"dataset {train_ds.spec.name!r}: no training images")
    if len(val_ds) == 0:
        raise ValueError(f"dataset {val_ds.spec.name!r}: no validation images (the best epoch is chosen on them)")
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "pos_embed" not in n and "cls_token" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "pos_embed" not in n and "cls_token" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    loader = _loader(train_ds, cfg.batch_size, True, gen, device)
    steps_per_epoch = max(1, len(loader))
    total, warm = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))

    best_state, best_acc, best_epoch, history, step = None, -1.0, -1, [], 0
    bar = tqdm(range(cfg.epochs), desc=f"fine-tune {info.name}", disable=not progress, unit="epoch")
    for epoch in bar:
        model.train()
        run_loss, seen = 0.0, 0
        for batch in loader:
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            x = _augment(batch["image"], cfg, gen).to(device, non_blocking=True)
            x = normalise(x, info)
            y = batch["label"].to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            run_loss += loss.item() * len(y)
            seen += len(y)
            step += 1
        val_acc, val_loss = evaluate_accuracy(model, info, val_ds, device)
        rec = {"epoch": epoch, "train_loss": run_loss / seen, "val_loss": val_loss, "val_accuracy": val_acc}
        history.append(rec)
        log.info("epoch %d: train loss %.4f, val loss %.4f, val acc %.3f", epoch, rec["train_loss"], val_loss, val_acc)
        bar.set_postfix(loss=f"{rec['train_loss']:.3f}", val_acc=f"{val_acc:.3f}")
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            best_state = copy.deepcopy({k: v.detach().clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(best_epoch, best_acc, history)
