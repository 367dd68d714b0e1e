"""Checkpoints: safetensors weights plus a JSON sidecar (architecture, init, hyper-parameters,
metrics, data fingerprint).  Never pickles."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .factory import ModelInfo, create_model


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(path: str | Path, model: torch.nn.Module, info: ModelInfo, meta: dict) -> str:
    """Write ``path`` (.safetensors) and ``path.json`` atomically; return the weights' sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.safetensors")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp))
    sha = file_sha256(tmp)
    sidecar = {"model": asdict(info), "sha256": sha, **meta}
    side_tmp = Path(str(path) + ".json.tmp")
    side_tmp.write_text(json.dumps(sidecar, indent=1, default=str))
    os.replace(tmp, path)
    os.replace(side_tmp, Path(str(path) + ".json"))
    return sha


def read_sidecar(path: str | Path) -> dict:
    return json.loads(Path(str(path) + ".json").read_text())


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, ModelInfo, dict]:
    """Rebuild the model from the sidecar and load the weights; checks the sha256."""
    side = read_sidecar(path)
    if file_sha256(path) != side["sha256"]:
        raise ValueError(f"{path}: weights do not match the sha256 in its sidecar")
    m = side["model"]
    # the weights come from the file: never the hub, whatever the zoo entry's default
    model, info = create_model(m["name"], m["num_classes"], pretrained=False, strategy=m.get("strategy"),
                               **{k: v for k, v in m["kwargs"].items()})
    model.load_state_dict(load_file(str(path)))
    return model.eval(), info, side
