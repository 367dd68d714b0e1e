"""Checkpoint folders: Hugging Face ``transformers`` ViT / DeiT folders loaded into timm, without ``transformers``.

A ``transformers`` image-classification folder holds ``config.json`` (``model_type``, ``architectures``,
sizes) and ``model.safetensors`` (or ``pytorch_model.bin``).  Its ViT is the same network as timm's
``VisionTransformer`` (Dosovitskiy et al. 2021: pre-norm blocks, class token, learned absolute position
embedding, exact GELU, a linear head on the final-normed class token), so the weights load by renaming
keys: the separate ``query`` / ``key`` / ``value`` projections are stacked into timm's ``qkv``.

Supported (:data:`SUPPORTED`):

* ``ViTForImageClassification`` -> a timm ViT built with the folder's sizes;
* ``DeiTForImageClassification`` -> a timm ViT with one extra prefix token: DeiT (Touvron et al. 2021)
  puts its distillation token right after the class token and classifies the class token alone, which
  is timm's ViT with ``reg_tokens=1`` (prefix order ``[cls, reg]``, position embedding over both);
* ``DeiTForImageClassificationWithTeacher`` -> timm's distilled DeiT (``deit_*_distilled_*``), whose
  eval output is the mean of the class-token and distillation-token heads, as in ``transformers``.

The folder's ``layer_norm_eps`` (``transformers``: 1e-12) is not carried over: timm's ViT uses 1e-6,
which changes a LayerNorm output by a relative ~1e-6 / (2 var), far below the logits' tolerance (tested).
A folder with a timm ``config.json`` (``architecture`` key, as ``timm``'s ``save_for_hf`` writes it)
is read as a plain timm state dict.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from .weights import load_state_dict_file

SUPPORTED = ("ViTForImageClassification", "DeiTForImageClassification", "DeiTForImageClassificationWithTeacher")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# transformers key (after the 'vit.' / 'deit.' prefix) -> timm key; {i} is the block index
_BLOCK = [
    (r"layernorm_before\.", "norm1."), (r"layernorm_after\.", "norm2."),
    (r"attention\.output\.dense\.", "attn.proj."), (r"attention\.o_proj\.", "attn.proj."),
    (r"intermediate\.dense\.", "mlp.fc1."), (r"output\.dense\.", "mlp.fc2."),
    (r"mlp\.fc1\.", "mlp.fc1."), (r"mlp\.fc2\.", "mlp.fc2."),
]
_QKV = re.compile(r"attention\.(?:attention\.(query|key|value)|(q|k|v)_proj)\.(weight|bias)$")
_LAYER = re.compile(r"^(?:encoder\.layer|layers)\.(\d+)\.(.+)$")
_TOP = {"embeddings.cls_token": "cls_token", "embeddings.position_embeddings": "pos_embed",
        "embeddings.distillation_token": "reg_token",
        "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
        "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
        "layernorm.weight": "norm.weight", "layernorm.bias": "norm.bias"}
_HEADS = {"classifier.": "head.", "cls_classifier.": "head.", "distillation_classifier.": "head_dist."}
_IGNORED = ("embeddings.mask_token", "pooler.")  # masked-image-modelling token, the unused pooler of ViTModel


class FolderError(ValueError):
    """A checkpoint folder that cannot be read (one line: the folder and the reason)."""


def _config(folder: Path) -> dict:
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FolderError(f"{folder}: a checkpoint folder needs a config.json (a transformers folder as "
                          f"save_pretrained writes it: config.json + model.safetensors or pytorch_model.bin)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FolderError(f"{cfg_path}: not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise FolderError(f"{cfg_path}: not a JSON object")
    return cfg


def _weights_file(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise FolderError(f"{folder}: no weights file (expected one of {', '.join(WEIGHT_FILES)}; sharded "
                      f"checkpoints are not supported)")


def architecture(cfg: dict) -> str | None:
    archs = cfg.get("architectures") or []
    return archs[0] if archs else None


def timm_kwargs(cfg: dict, folder: Path) -> dict:
    """timm ``VisionTransformer`` build arguments from a transformers ViT / DeiT config."""
    arch = architecture(cfg)
    if arch not in SUPPORTED:
        raise FolderError(f"{folder}: architecture {arch or cfg.get('model_type')!r} is not supported; supported "
                          f"transformers checkpoints: {', '.join(SUPPORTED)}")
    act = cfg.get("hidden_act", "gelu")
    if act != "gelu":
        raise FolderError(f"{folder}: hidden_act {act!r} is not supported (timm's ViT uses exact 'gelu')")
    if cfg.get("num_channels", 3) != 3:
        raise FolderError(f"{folder}: num_channels {cfg.get('num_channels')} is not supported (RGB only)")
    dim, heads = int(cfg.get("hidden_size", 768)), int(cfg.get("num_attention_heads", 12))
    kw = dict(img_size=int(cfg.get("image_size", 224)), patch_size=int(cfg.get("patch_size", 16)), embed_dim=dim,
              depth=int(cfg.get("num_hidden_layers", 12)), num_heads=heads,
              mlp_ratio=int(cfg.get("intermediate_size", 4 * dim)) / dim, qkv_bias=bool(cfg.get("qkv_bias", True)))
    if arch == "DeiTForImageClassification":
        kw["reg_tokens"] = 1  # the distillation token, after the class token
    pre = _preprocessor(folder)
    if pre:
        kw["pretrained_cfg_overlay"] = pre
    return kw


def _preprocessor(folder: Path) -> dict:
    """mean / std of the folder's preprocessor_config.json (transformers' image processor), if any."""
    p = folder / "preprocessor_config.json"
    if not p.is_file():
        return {}
    try:
        pre = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    out = {}
    if isinstance(pre.get("image_mean"), list) and len(pre["image_mean"]) == 3:
        out["mean"] = [float(v) for v in pre["image_mean"]]
    if isinstance(pre.get("image_std"), list) and len(pre["image_std"]) == 3:
        out["std"] = [float(v) for v in pre["image_std"]]
    return out


def to_timm(sd: dict[str, torch.Tensor], folder: Path, distilled: bool = False) -> dict[str, torch.Tensor]:
    """Rename a transformers ViT / DeiT state dict to timm's (``distilled``: the WithTeacher model, whose
    distillation token is timm's ``dist_token``)."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    unknown = []
    for key, t in sd.items():
        head = next((p for p in _HEADS if key.startswith(p)), None)
        if head is not None:
            out[_HEADS[head] + key[len(head):]] = t
            continue
        body = re.sub(r"^(vit|deit)\.", "", key)
        if body.startswith(_IGNORED):
            continue
        if body in _TOP:
            name = _TOP[body]
            out["dist_token" if distilled and name == "reg_token" else name] = t
            continue
        m = _LAYER.match(body)
        if m is None:
            unknown.append(key)
            continue
        i, rest = int(m.group(1)), m.group(2)
        q = _QKV.match(rest)
        if q is not None:
            which = (q.group(1) or {"q": "query", "k": "key", "v": "value"}[q.group(2)])
            qkv.setdefault((i, q.group(3)), {})[which] = t
            continue
        for pat, rep in _BLOCK:
            if re.match(pat, rest):
                out[f"blocks.{i}.{re.sub('^' + pat, rep, rest)}"] = t
                break
        else:
            unknown.append(key)
    if unknown:
        raise FolderError(f"{folder}: keys that are not a transformers ViT / DeiT: {unknown[:5]}")
    for (i, p), parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            raise FolderError(f"{folder}: block {i} lacks its {sorted({'query', 'key', 'value'} - set(parts))} {p}")
        out[f"blocks.{i}.attn.qkv.{p}"] = torch.cat([parts["query"], parts["key"], parts["value"]], 0)
    return out


def folder_weights(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(timm state dict, timm build overrides) of a checkpoint folder; :class:`FolderError` with one line."""
    folder = Path(folder)
    cfg = _config(folder)
    sd = load_state_dict_file(_weights_file(folder))
    if "architecture" in cfg and "model_type" not in cfg:  # timm's own hub layout: a timm state dict already
        return sd, {}
    kwargs = timm_kwargs(cfg, folder)
    return to_timm(sd, folder, distilled=architecture(cfg) == "DeiTForImageClassificationWithTeacher"), kwargs


def folder_family(folder: str | Path) -> str | None:
    """'vit' / 'deit' for a transformers folder (None for a timm folder or no config)."""
    try:
        cfg = _config(Path(folder))
    except FolderError:
        return None
    return {"vit": "vit", "deit": "deit"}.get(cfg.get("model_type"))


def folder_input_size(folder: str | Path) -> int | None:
    """The input size (px) in a transformers folder's config.json (None when it has none)."""
    try:
        cfg = _config(Path(folder))
    except FolderError:
        return None
    return int(cfg["image_size"]) if isinstance(cfg.get("image_size"), int) and "model_type" in cfg else None
