"""Where a model's weights come from: a local file or the timm hub, and fitting them to the model.

Local files are safetensors, or a ``.pth`` read with ``torch.load(weights_only=True)`` (never
unpickled objects).  Hub loading never hangs offline: the hub endpoint is probed first (a short
TCP connect in a thread), and when it cannot be reached the local Hugging Face cache is tried; if
neither has the weights, :class:`WeightsUnavailable` names the model and both ways to get them.

:func:`fit_state_dict` adapts a backbone state dict to a model built for the task:

* the classification head is dropped when its shape differs (a new one is initialised) or when the
  file has none (a pretrained backbone, e.g. timm's DINO / MAE checkpoints with ``num_classes=0``);
* MAE: the released encoders end with a ``norm`` applied to every token, while MAE fine-tuning
  (He et al. 2022, sec. A.2) averages the patch tokens and normalises the pooled vector
  (``fc_norm``).  A model built with ``global_pool='avg'`` has ``fc_norm`` and no ``norm``; the
  file's ``norm.*`` is then loaded into ``fc_norm.*`` (same shape, same role: the last LayerNorm);
* an absolute position embedding of another grid size is resampled (timm's bicubic resampling).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch
from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download, try_to_load_from_cache
from safetensors.torch import load_file
from timm.layers import resample_abs_pos_embed

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0


class WeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for but neither the hub nor a local file could supply them."""


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):  # common wrappers of training checkpoints
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: not a state dict (found {type(sd).__name__})")
    return sd


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the Hugging Face endpoint accepts a TCP connection within ``timeout`` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        endpoint = hf_constants.ENDPOINT
    except Exception:  # pragma: no cover - very old huggingface_hub
        endpoint = "https://huggingface.co"
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    ok = []

    def probe():  # getaddrinfo has no timeout of its own: run it where we can stop waiting
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(ok)


def cached_hub_file(pretrained_cfg: dict) -> str | None:
    """Path of the weights in the local Hugging Face cache, if an earlier online run fetched them."""
    repo = pretrained_cfg.get("hf_hub_id")
    if not repo:
        return None
    names = [pretrained_cfg.get("hf_hub_filename")] if pretrained_cfg.get("hf_hub_filename") else []
    names += ["model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin"]
    for fname in names:
        hit = try_to_load_from_cache(repo, fname)
        if isinstance(hit, str) and Path(hit).is_file():
            return hit
    return None


def hub_state_dict(name: str, timm_name: str, kwargs: dict, head: bool = False) -> dict[str, torch.Tensor]:
    """The hub weights of ``timm_name`` as a headless state dict (token pooling, final norm kept);
    ``head``: with the hub's own classification head (a model evaluated as given)."""
    probe = timm.create_model(timm_name, pretrained=False, num_classes=0)
    cfg = dict(probe.pretrained_cfg or {})
    del probe
    # build kwargs that change parameter shapes are kept; pooling is left to fit_state_dict
    src_kwargs = {k: v for k, v in kwargs.items() if k not in ("global_pool", "fc_norm", "num_classes")}
    overlay = None
    if not hub_reachable():
        local = cached_hub_file(cfg)
        if local is None:
            raise WeightsUnavailable(
                f"model {name!r} (timm {timm_name!r}): pretrained weights are not available: the timm hub "
                f"({cfg.get('hf_hub_id') or 'no hub id'}) cannot be reached and they are not in the local cache. "
                f"Either run once with network access (they are then cached), or download them elsewhere and "
                f"pass weights='path/to/file.safetensors' (or a .pth state dict).")
        overlay = dict(file=local)
        log.info("model %s: hub unreachable, using the cached weights %s", name, local)
    try:
        if head:  # the file as it is, its own head included (a classifier of any number of classes)
            local = overlay["file"] if overlay else hf_hub_download(
                cfg["hf_hub_id"], cfg.get("hf_hub_filename") or "model.safetensors")
            return load_state_dict_file(local)
        src = timm.create_model(timm_name, pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay,
                                **src_kwargs)
    except Exception as exc:
        raise WeightsUnavailable(
            f"model {name!r} (timm {timm_name!r}): could not load pretrained weights from the timm hub ({exc}); "
            f"either connect to the network or pass weights='path/to/file.safetensors' (or .pth)") from None
    return src.state_dict()


def classifier_prefixes(model: torch.nn.Module) -> tuple[str, ...]:
    cls = (getattr(model, "pretrained_cfg", None) or {}).get("classifier", "head")
    names = cls if isinstance(cls, (list, tuple)) else (cls,)
    return tuple(f"{n}." for n in names) + ("head.", "head_dist.")


def fit_state_dict(model: torch.nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    """Load ``sd`` into ``model`` (see the module doc); raise when the backbone does not fit."""
    own = model.state_dict()
    heads = classifier_prefixes(model)
    sd = dict(sd)
    for k in [k for k in sd if k.startswith(heads)]:
        if k not in own or own[k].shape != sd[k].shape:
            log.info("%s: dropping %s %s (a new head is initialised)", source, k, tuple(sd[k].shape))
            sd.pop(k)
    if "fc_norm.weight" in own and "fc_norm.weight" not in sd and "norm.weight" in sd and "norm.weight" not in own:
        log.info("%s: loading the encoder's final norm into fc_norm (average pooling, MAE fine-tuning)", source)
        for p in ("weight", "bias"):
            if f"norm.{p}" in sd:
                sd[f"fc_norm.{p}"] = sd.pop(f"norm.{p}")
    if "pos_embed" in sd and "pos_embed" in own and sd["pos_embed"].shape != own["pos_embed"].shape:
        npt = 0 if getattr(model, "no_embed_class", False) else int(getattr(model, "num_prefix_tokens", 1))
        log.info("%s: resampling pos_embed %s -> %s", source, tuple(sd["pos_embed"].shape),
                 tuple(own["pos_embed"].shape))
        sd["pos_embed"] = resample_abs_pos_embed(sd["pos_embed"], new_size=list(model.patch_embed.grid_size),
                                                 num_prefix_tokens=npt)
    wrong = [k for k in sd if k in own and tuple(own[k].shape) != tuple(sd[k].shape)]
    if wrong:
        k = wrong[0]
        raise RuntimeError(f"{source}: weights do not fit the model (another architecture?): {len(wrong)} tensors "
                           f"differ in shape, e.g. {k} {tuple(sd[k].shape)} in the weights vs {tuple(own[k].shape)} "
                           f"in the model")
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith(heads)]
    if missing or unexpected:
        raise RuntimeError(f"{source}: weights do not fit the model: missing {missing[:5]}, "
                           f"unexpected {list(unexpected)[:5]}")
