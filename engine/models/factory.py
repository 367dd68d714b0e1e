"""Model factory over ``timm.create_model`` with a small zoo of named configurations.

A zoo entry is a short name for a timm architecture plus keyword overrides; any other timm name
works as well.  Weights come from the timm hub (``pretrained=True``, needs the network) or from a
local file (safetensors, or a ``.pth`` read with ``torch.load(weights_only=True)``); the
classification head is replaced for the task's classes.  Normalisation comes from the model's
pretrained config.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ZooEntry:
    timm_name: str
    kwargs: dict = field(default_factory=dict)
    description: str = ""


ZOO: dict[str, ZooEntry] = {
    # The demo backbone: a small 4-block ViT on 64 px inputs with 8 px patches.
    "vit_demo": ZooEntry("vit_tiny_patch16_224",
                         dict(img_size=64, patch_size=8, depth=4, embed_dim=192, num_heads=3),
                         "4-block ViT-Tiny (dim 192, 3 heads), 64 px input, patch 8: an 8 x 8 token grid (demo)"),
    "vit_s16": ZooEntry("vit_small_patch16_224", {}, "ViT-S/16 at 224"),
    "vit_b16": ZooEntry("vit_base_patch16_224", {}, "ViT-B/16 at 224"),
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


def resolve(name: str) -> ZooEntry:
    if name in ZOO:
        return ZOO[name]
    if name in timm.list_models() or timm.is_model(name):
        return ZooEntry(name)
    raise ValueError(f"unknown model {name!r}: not a zoo name ({sorted(ZOO)}) nor a timm model")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return sd


def create_model(name: str, num_classes: int, *, pretrained: bool = False, weights: str | Path | None = None,
                 **overrides) -> tuple[torch.nn.Module, ModelInfo]:
    """Build a model for ``num_classes`` classes; returns ``(model, info)``."""
    entry = resolve(name)
    kwargs = {**entry.kwargs, **overrides}
    try:
        model = timm.create_model(entry.timm_name, pretrained=pretrained and weights is None,
                                  num_classes=num_classes, **kwargs)
    except Exception as exc:  # hub download failures surface here
        if pretrained and weights is None:
            raise RuntimeError(
                f"model {name!r}: could not load pretrained weights from the timm hub ({exc}); "
                f"either connect to the network or pass weights='path/to/file.safetensors' (or .pth)") from None
        raise
    if weights is not None:
        sd = load_state_dict_file(weights)
        head_keys = {k for k in sd if k.startswith("head.")}
        if head_keys and "head.weight" in sd and sd["head.weight"].shape[0] != num_classes:
            log.info("dropping the %d-class head of %s; a new %d-class head is initialised",
                     sd["head.weight"].shape[0], weights, num_classes)
            sd = {k: v for k, v in sd.items() if k not in head_keys}
        missing, unexpected = model.load_state_dict(sd, strict=False)
        missing = [k for k in missing if not k.startswith("head.")]
        if missing or unexpected:
            raise RuntimeError(f"{weights}: weights do not fit model {name!r}: "
                               f"missing {missing[:5]}, unexpected {list(unexpected)[:5]}")
    cfg = model.pretrained_cfg or {}
    size = int(kwargs.get("img_size", cfg.get("input_size", (3, 224, 224))[-1]))
    grid = tuple(model.patch_embed.grid_size) if hasattr(model, "patch_embed") else (0, 0)
    info = ModelInfo(
        name=name, timm_name=entry.timm_name, kwargs=kwargs, num_classes=num_classes, input_size=size,
        mean=tuple(cfg.get("mean", (0.5, 0.5, 0.5))), std=tuple(cfg.get("std", (0.5, 0.5, 0.5))),
        grid=grid, num_prefix_tokens=int(getattr(model, "num_prefix_tokens", 0)),
    )
    return model, info


def normalise(images: torch.Tensor, info: ModelInfo) -> torch.Tensor:
    """[0, 1] images (B, 3, H, W) -> the model's normalised input."""
    mean = torch.tensor(info.mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(info.std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std
