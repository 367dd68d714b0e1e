"""Model factory over ``timm.create_model`` with a zoo of named configurations.

A zoo entry is a short name for a timm architecture (with its pretrained tag), build overrides, the
architecture family and the pretraining strategy of its weights; any other timm name works as
well (``arch`` from its name, ``strategy`` ``hub:<tag>`` when pretrained).  Weights come from the
timm hub (``pretrained=True``; offline this fails fast, see :mod:`.weights`) or from a local file
(``weights=path``: safetensors, or a ``.pth`` read with ``weights_only=True``); the classification
head is replaced for the task's classes.  Normalisation mean/std and the input size come from the
model's pretrained config.  The zoo is documented in ``docs/models.md``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch

from .hf import folder_weights
from .weights import WeightsUnavailable, fit_state_dict, hub_state_dict, load_state_dict_file

log = logging.getLogger(__name__)

__all__ = ["ZOO", "ZooEntry", "ModelInfo", "WeightsUnavailable", "create_model", "normalise", "resolve",
           "load_state_dict_file"]


@dataclass(frozen=True)
class ZooEntry:
    timm_name: str  # timm architecture, with the pretrained tag of the hub weights when there are any
    kwargs: dict = field(default_factory=dict)
    description: str = ""
    arch: str = "vit"  # family, for grouping: vit / deit / swin / ...
    # how the hub weights were pretrained: random (no hub weights) / supervised / dino / mae / dinov2
    strategy: str = "random"
    pretrained: bool = False  # whether building the entry loads the hub weights by default


_MAE_POOL = dict(global_pool="avg")  # MAE fine-tuning recipe: mean of patch tokens, fc_norm (see weights.py)

ZOO: dict[str, ZooEntry] = {
    # The demo backbone: a small 4-block ViT on 64 px inputs with 8 px patches.
    "vit_demo": ZooEntry("vit_tiny_patch16_224",
                         dict(img_size=64, patch_size=8, depth=4, embed_dim=192, num_heads=3),
                         "4-block ViT-Tiny (dim 192, 3 heads), 64 px input, patch 8: an 8 x 8 token grid (demo)"),
    "vit_s16": ZooEntry("vit_small_patch16_224", {}, "ViT-S/16 at 224"),
    "vit_b16": ZooEntry("vit_base_patch16_224", {}, "ViT-B/16 at 224"),
    # Study 1: ViT-B/16 under four initialisations.
    "vit_b16_random": ZooEntry("vit_base_patch16_224", {}, "ViT-B/16, random initialisation (never loads weights)"),
    "vit_b16_supervised": ZooEntry("vit_base_patch16_224.augreg2_in21k_ft_in1k", {},
                                   "ViT-B/16, supervised ImageNet-21k pretraining, fine-tuned on ImageNet-1k (AugReg2)",
                                   strategy="supervised", pretrained=True),
    "vit_b16_dino": ZooEntry("vit_base_patch16_224.dino", {}, "ViT-B/16, DINO self-distillation on ImageNet-1k",
                             strategy="dino", pretrained=True),
    "vit_b16_mae": ZooEntry("vit_base_patch16_224.mae", dict(_MAE_POOL),
                            "ViT-B/16, MAE masked-autoencoder pretraining on ImageNet-1k; average pooling + fc_norm",
                            strategy="mae", pretrained=True),
    # Study 2: architectures.
    "deit_b16": ZooEntry("deit_base_patch16_224.fb_in1k", {},
                         "DeiT-B/16, supervised ImageNet-1k (no distillation token)", arch="deit",
                         strategy="supervised", pretrained=True),
    "swin_b": ZooEntry("swin_base_patch4_window7_224.ms_in22k_ft_in1k", {},
                       "Swin-B, window 7, supervised ImageNet-22k then ImageNet-1k", arch="swin",
                       strategy="supervised", pretrained=True),
    "vit_b14_dinov2": ZooEntry("vit_base_patch14_dinov2.lvd142m", {},
                               "ViT-B/14, DINOv2 on LVD-142M, 518 px input (a 37 x 37 grid)", strategy="dinov2",
                               pretrained=True),
}


@dataclass(frozen=True)
class ModelInfo:
    name: str  # zoo or timm name as asked
    timm_name: str
    kwargs: dict
    num_classes: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    grid: tuple[int, int]
    num_prefix_tokens: int
    arch: str = "vit"
    strategy: str = "random"  # random / supervised / dino / mae / dinov2 / hub:<tag> / local / pretrained <strategy>


def arch_of(timm_name: str) -> str:
    base = timm_name.split(".")[0]
    for fam in ("deit", "swin", "beit", "eva", "cait", "convnext", "resnet"):
        if base.startswith(fam):
            return fam
    return "vit" if base.startswith("vit") else base.split("_")[0]


def resolve(name: str) -> ZooEntry:
    if name in ZOO:
        return ZOO[name]
    if timm.is_model(name) or name in timm.list_models():
        base, _, tag = name.partition(".")
        return ZooEntry(name, {}, arch=arch_of(base), strategy=f"hub:{tag or 'default'}")
    raise ValueError(f"unknown model {name!r}: not a zoo name ({sorted(ZOO)}) nor a timm model")


def local_strategy(path: Path) -> str:
    """Strategy recorded in a weights file's JSON sidecar (written by checkpoints and pretraining)."""
    side = Path(str(path) + ".json")
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
            s = meta.get("strategy") or (meta.get("model") or {}).get("strategy")
            if s:
                return str(s)
        except (json.JSONDecodeError, AttributeError):
            pass
    return "local"


def create_model(name: str, num_classes: int, *, pretrained: bool | None = None, weights: str | Path | None = None,
                 strategy: str | None = None, **overrides) -> tuple[torch.nn.Module, ModelInfo]:
    """Build a model for ``num_classes`` classes; returns ``(model, info)``.

    ``pretrained``: load the hub weights (``None``: the zoo entry's default, i.e. hub-pretrained entries
    load them, ``vit_demo`` / ``vit_b16`` / ``vit_b16_random`` and plain timm names do not).  ``weights``:
    a local file instead (it wins over the hub).  ``strategy`` labels the init in ``info`` when the
    default guess (zoo entry, weights sidecar, ``random``) is not right.  Raises
    :class:`WeightsUnavailable` (naming the model and both options) when hub weights are asked for
    but cannot be had.
    """
    entry = resolve(name)
    kwargs = {**entry.kwargs, **overrides}
    use_hub = (entry.pretrained if pretrained is None else pretrained) and weights is None
    if use_hub and name == "vit_b16_random":
        use_hub = False  # the random entry never loads weights
    sd = None
    if weights is not None and Path(weights).is_dir():  # a checkpoint folder (transformers ViT / DeiT, timm)
        sd, folder_kwargs = folder_weights(weights)
        kwargs = {**kwargs, **folder_kwargs}
    model = timm.create_model(entry.timm_name, pretrained=False, num_classes=num_classes, **kwargs)
    init = "random"
    if weights is not None:
        fit_state_dict(model, sd if sd is not None else load_state_dict_file(weights), f"{weights} (model {name!r})")
        init = local_strategy(Path(weights)) if sd is None else "local"
    elif use_hub:
        fit_state_dict(model, hub_state_dict(name, entry.timm_name, kwargs), f"hub weights of {name!r}")
        init = entry.strategy if entry.strategy != "random" else f"hub:{entry.timm_name.partition('.')[2] or 'default'}"
    cfg = model.pretrained_cfg or {}
    size = int(kwargs.get("img_size", cfg.get("input_size", (3, 224, 224))[-1]))
    grid = tuple(model.patch_embed.grid_size) if hasattr(model, "patch_embed") else (0, 0)
    info = ModelInfo(
        name=name, timm_name=entry.timm_name, kwargs=kwargs, num_classes=num_classes, input_size=size,
        mean=tuple(cfg.get("mean", (0.5, 0.5, 0.5))), std=tuple(cfg.get("std", (0.5, 0.5, 0.5))),
        grid=grid, num_prefix_tokens=int(getattr(model, "num_prefix_tokens", 0)),
        arch=entry.arch, strategy=strategy or init,
    )
    return model, info


def normalise(images: torch.Tensor, info: ModelInfo) -> torch.Tensor:
    """[0, 1] images (B, 3, H, W) -> the model's normalised input."""
    mean = torch.tensor(info.mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(info.std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std
