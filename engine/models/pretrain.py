"""Offline pretraining at small scale: ``random``, ``supervised``, ``dino`` and ``mae`` backbones.

With no hub, the demo still compares initialisations by pretraining a small ViT itself on a
*source* set that is not the target data, then fine-tuning it on the target like a hub model:

* ``random``     -- no pretraining: the seeded random initialisation, saved for uniformity;
* ``supervised`` -- cross-entropy on a different labelled task (the generated source set, or a
  folder whose first-level subfolders are the classes), head discarded;
* ``dino``       -- self-distillation with multi-crop, centring, sharpening, EMA teacher
  (Caron et al. 2021, :mod:`.ssl`);
* ``mae``        -- masked-patch reconstruction with a light decoder (He et al. 2022, :mod:`.ssl`).

The source is ``"synthetic"`` (:mod:`engine.data.synthetic.source`, generated in memory), a
folder of images (any image files under it), or an :class:`ImageSource` (images already loaded,
e.g. a target dataset's *training split* without its labels: the runner's ``pretrain_source =
"target"``).  Pretraining on the target domain's own images is in-domain self-supervised
pretraining; the strategy is then labelled ``<strategy>@domain``.

:func:`pretrain_backbone` writes the backbone's state dict (no head) as safetensors with a JSON
sidecar and caches it under a hash of everything that determines it (model, strategy, source,
config): a second call with the same arguments returns the file without training.  Load it with
``create_model(model_name, num_classes, weights=path)`` (a new head is initialised).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from tqdm import tqdm

from ..data.synthetic.source import SourceConfig, generate_source
from .checkpoint import file_sha256
from .factory import create_model, normalise
from .ssl import DINO, MAE, colour_jitter, flips_rot90, random_resized_crops

log = logging.getLogger(__name__)

STRATEGIES = ("random", "supervised", "dino", "mae")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
VERSION = 1  # bump when a strategy's code changes what it produces


@dataclass(frozen=True)
class PretrainConfig:
    steps: int = 200
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 10
    seed: int = 0
    source_n: int = 2048  # images generated for the synthetic source
    rot90: bool = True  # rotations in the augmentations (off for modalities with an up direction)
    patch_drop: float = 0.0  # supervised: fraction of patch tokens dropped per image (cheaper steps, timm PatchDropout)
    # dino
    dino_out_dim: int = 1024
    dino_hidden: int = 512
    dino_bottleneck: int = 128
    dino_local_crops: int = 4
    dino_local_frac: float = 0.5  # local crop side, as a fraction of the input size
    dino_global_scale: tuple[float, float] = (0.4, 1.0)
    dino_local_scale: tuple[float, float] = (0.05, 0.4)
    dino_student_temp: float = 0.1
    dino_teacher_temp: float = 0.04
    dino_center_momentum: float = 0.9
    dino_teacher_momentum: float = 0.99  # start; cosine to 1 at the end (0.996 in the paper's long runs)
    dino_freeze_prototypes_steps: int = 0  # first steps without updating the head's last layer (paper: 1 epoch)
    # mae
    mae_mask_ratio: float = 0.75
    mae_decoder_dim: int = 128
    mae_decoder_depth: int = 2
    mae_decoder_heads: int = 4
    mae_norm_pix: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class ImageSource:
    """Images already loaded, ``float (N, 3, S, S)`` in [0, 1], unlabelled, with a ``description``
    that identifies them in the cache key (e.g. the dataset fingerprint of the split they come from)."""
    images: torch.Tensor
    description: dict


def _folder_images(root: Path) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"pretraining source {root}: no image files ({sorted(IMAGE_SUFFIXES)}) under it")
    return files


def describe_source(source: str | Path | ImageSource, cfg: PretrainConfig, size: int) -> dict:
    """What identifies the source in the cache key (for a folder: each file's path and size)."""
    if isinstance(source, ImageSource):
        return {"kind": "images", "n": int(source.images.shape[0]), **source.description}
    if str(source) == "synthetic":
        return {"kind": "synthetic", "config": SourceConfig(n=cfg.source_n, size=size).key()}
    root = Path(source)
    if not root.is_dir():
        raise ValueError(f"pretraining source {source!r}: neither 'synthetic' nor a folder of images")
    h = hashlib.sha256()
    for p in _folder_images(root):
        h.update(f"{p.relative_to(root)}\0{p.stat().st_size}\n".encode())
    return {"kind": "folder", "root": str(root.resolve()), "files": h.hexdigest()}


def load_source(source: str | Path | ImageSource, cfg: PretrainConfig,
                size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(images float (N, 3, S, S) in [0, 1], labels or None)``.  A folder is labelled only when every
    image lies in a first-level subfolder and there are at least two (the subfolder is the class);
    an :class:`ImageSource` never is."""
    if isinstance(source, ImageSource):
        x = source.images.float()
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[0] == 0:
            raise ValueError(f"pretraining source images: expected (N>0, 3, H, W), got {tuple(x.shape)}")
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x, None
    if str(source) == "synthetic":
        images, labels = generate_source(SourceConfig(n=cfg.source_n, size=size))
        return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255), torch.from_numpy(labels)
    root = Path(source)
    files = _folder_images(root)
    arr = np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR)) for p in files])
    parts = [p.relative_to(root).parts for p in files]
    classes = sorted({q[0] for q in parts if len(q) > 1})
    labels = None
    if len(classes) >= 2 and all(len(q) > 1 for q in parts):
        labels = torch.tensor([classes.index(q[0]) for q in parts])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(255), labels


# --------------------------------------------------------------------------- cache
def cache_key(model_name: str, strategy: str, source_desc: dict, cfg: PretrainConfig, overrides: dict) -> str:
    blob = json.dumps({"model": model_name, "overrides": overrides, "strategy": strategy, "source": source_desc,
                       "config": cfg.to_dict(), "version": VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _save(path: Path, state: dict[str, torch.Tensor], meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp))
    meta = {**meta, "sha256": file_sha256(tmp)}
    side_tmp = Path(str(path) + f".{os.getpid()}.json.tmp")
    side_tmp.write_text(json.dumps(meta, indent=1, default=str))
    os.replace(tmp, path)  # weights first: a sidecar never describes missing weights
    os.replace(side_tmp, Path(str(path) + ".json"))


# --------------------------------------------------------------------------- training
def _lr_at(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))


def _batches(n: int, cfg: PretrainConfig, gen: torch.Generator):
    """Indices of ``cfg.steps`` batches, epoch after epoch of seeded permutations."""
    perm, pos = torch.randperm(n, generator=gen), 0
    for _ in range(cfg.steps):
        if pos + cfg.batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        yield perm[pos:pos + min(cfg.batch_size, n)]
        pos += cfg.batch_size


def _run(strategy: str, model_name: str, images: torch.Tensor, labels: torch.Tensor | None, cfg: PretrainConfig,
         device: torch.device, progress: bool, overrides: dict) -> tuple[dict[str, torch.Tensor], list[float]]:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    if strategy == "supervised":
        if labels is None:
            raise ValueError("supervised pretraining needs a labelled source: 'synthetic', or a folder with one "
                             "subfolder per class")
        extra = {"patch_drop_rate": cfg.patch_drop} if cfg.patch_drop else {}
        model, info = create_model(model_name, int(labels.max()) + 1, pretrained=False, **{**overrides, **extra})
    else:
        extra = {"dynamic_img_size": True} if strategy == "dino" else {}
        model, info = create_model(model_name, 0, pretrained=False, **{**overrides, **extra})
    if strategy == "random":
        return model.state_dict(), [], {}
    if strategy in ("dino", "mae") and not all(hasattr(model, a) for a in ("patch_embed", "pos_embed", "blocks")):
        raise ValueError(f"{strategy} pretraining needs a plain ViT (patch_embed, pos_embed, blocks); "
                         f"{model_name!r} is not one")
    size = info.input_size
    if strategy == "dino":
        net = DINO(model, hidden=cfg.dino_hidden, bottleneck=cfg.dino_bottleneck, out_dim=cfg.dino_out_dim,
                   student_temp=cfg.dino_student_temp, teacher_temp=cfg.dino_teacher_temp,
                   center_momentum=cfg.dino_center_momentum)
        params = net.student.parameters()
    elif strategy == "mae":
        net = MAE(model, mask_ratio=cfg.mae_mask_ratio, decoder_dim=cfg.mae_decoder_dim,
                  decoder_depth=cfg.mae_decoder_depth, decoder_heads=cfg.mae_decoder_heads, norm_pix=cfg.mae_norm_pix)
        params = net.parameters()
    else:
        net = model
        params = model.parameters()
    net.to(device).train()
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    patch = size // max(1, info.grid[0])
    local = max(patch, int(size * cfg.dino_local_frac) // patch * patch)  # whole patches
    losses: list[float] = []
    diagnostics: dict[str, list[float]] = {}  # DINO: collapse statistics per step (ssl.collapse_stats)
    bar = tqdm(_batches(len(images), cfg, gen), total=cfg.steps, desc=f"pretrain {model_name} ({strategy})",
               disable=not progress, unit="step")
    for step, idx in enumerate(bar):
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg)
        x = images[idx]
        if strategy == "dino":
            g_views = [normalise(colour_jitter(flips_rot90(random_resized_crops(x, size, cfg.dino_global_scale, gen),
                                                           gen, cfg.rot90), gen), info).to(device)
                       for _ in range(2)]
            l_views = [normalise(colour_jitter(flips_rot90(random_resized_crops(x, local, cfg.dino_local_scale, gen),
                                                           gen, cfg.rot90), gen), info).to(device)
                       for _ in range(cfg.dino_local_crops)]
            loss = net(g_views, l_views)
        elif strategy == "mae":
            x = flips_rot90(random_resized_crops(x, size, (0.5, 1.0), gen), gen, cfg.rot90)
            loss = net(normalise(x, info).to(device), gen)
        else:
            x = colour_jitter(flips_rot90(x, gen, cfg.rot90), gen, strength=0.2, p_gray=0.0)
            loss = F.cross_entropy(net(normalise(x, info).to(device)), labels[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if strategy == "dino":
            if step < cfg.dino_freeze_prototypes_steps:
                net.student["head"].prototypes.grad = None  # AdamW skips a parameter without a gradient
            torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], 3.0)
        opt.step()
        if strategy == "dino":  # teacher momentum: cosine from the start value to 1
            m0 = cfg.dino_teacher_momentum
            net.update_teacher(1 - (1 - m0) * 0.5 * (1 + math.cos(math.pi * step / max(1, cfg.steps - 1))))
            for k, v in net.stats.items():
                diagnostics.setdefault(k, []).append(round(v, 5))
        losses.append(float(loss.item()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if (step + 1) % max(1, cfg.steps // 10) == 0:
            log.info("pretrain %s (%s) step %d of %d: loss %.4f %s", model_name, strategy, step + 1, cfg.steps,
                     losses[-1], " ".join(f"{k} {v[-1]:.3f}" for k, v in diagnostics.items()),
                     extra={"unit_progress": {"model": f"{model_name} ({strategy})", "unit": "pretraining step",
                                              "k": step + 1, "n": cfg.steps, "loss": losses[-1]}})
    backbone = net.teacher["backbone"] if strategy == "dino" else model  # DINO keeps the teacher (the paper's choice)
    return backbone.state_dict(), losses, diagnostics


def dino_collapse(diagnostics: dict[str, list[float]], last: int = 10) -> str | None:
    """``"uniform"`` when the teacher's normalised entropy averages above 0.9 over the ``last`` steps,
    ``"one prototype"`` when the normalised entropy of its mean output averages below 0.1, else None
    (see :func:`engine.models.ssl.collapse_stats`)."""
    if not diagnostics.get("teacher_entropy"):
        return None
    h = diagnostics["teacher_entropy"][-last:]
    u = diagnostics["usage_entropy"][-last:]
    if sum(h) / len(h) > 0.9:
        return "uniform"
    if sum(u) / len(u) < 0.1:
        return "one prototype"
    return None


def pretrain_backbone(model_name: str, strategy: str, source: str | Path | ImageSource = "synthetic",
                      cfg: PretrainConfig = PretrainConfig(), cache_dir: str | Path = "cache/pretrained",
                      device: str | torch.device = "cpu", progress: bool = True, **overrides) -> Path:
    """Pretrain ``model_name``'s backbone with ``strategy`` on ``source``; return the cached safetensors path.

    The sidecar (``path + '.json'``) records the strategy label (``dino``, or ``dino@domain`` for an
    in-domain source), model, source, config, the loss every step, for DINO the collapse statistics
    every step and the verdict (``collapse``: ``uniform`` / ``one prototype`` / null), wall and CPU seconds.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown pretraining strategy {strategy!r}; expected one of {STRATEGIES}")
    device = torch.device(device)
    probe, info = create_model(model_name, 0, pretrained=False, **overrides)
    del probe
    desc = describe_source(source, cfg, info.input_size)
    key = cache_key(model_name, strategy, desc, cfg, overrides)
    path = Path(cache_dir) / f"{model_name}-{strategy}-{key[:16]}.safetensors"
    if path.is_file() and Path(str(path) + ".json").is_file():
        log.info("pretrained backbone %s (%s) from cache: %s", model_name, strategy, path)
        return path
    images, labels = load_source(source, cfg, info.input_size) if strategy != "random" else (torch.zeros(1), None)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    state, losses, diagnostics = _run(strategy, model_name, images, labels, cfg, device, progress, overrides)
    wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    state = {k: v for k, v in state.items() if not k.startswith(("head.", "head_dist."))}
    label = strategy if desc["kind"] == "synthetic" or strategy == "random" else f"{strategy}@domain"
    collapse = dino_collapse(diagnostics)
    if collapse:
        log.warning("pretrain %s (%s): DINO ended collapsed (%s); its backbone is unlikely to beat random weights",
                    model_name, label, collapse)
    _save(path, state, {"strategy": label, "pretrain_strategy": strategy, "model": model_name, "overrides": overrides,
                        "source": desc, "config": cfg.to_dict(), "cache_key": key, "losses": losses,
                        "diagnostics": diagnostics, "collapse": collapse,
                        "seconds_wall": wall, "seconds_cpu": cpu, "version": VERSION})
    log.info("pretrained %s (%s) in %.1f s wall, %.1f s CPU -> %s", model_name, strategy, wall, cpu, path)
    return path
