"""A model evaluated as it is ("as given"): the researcher's own weights, with their own head, never trained here.

The weights are a local file (safetensors, or a ``.pth`` state dict), a checkpoint folder (a Hugging Face
``transformers`` ViT / DeiT folder, or a folder with ``model.safetensors`` / ``pytorch_model.bin``; see
:mod:`.hf`) or the timm hub weights of a tag.  Unlike fine-tuning (which drops a head that does not
fit and initialises a new one), the head here *is* the classifier being evaluated, so:

* the file must have a classification head, and it must have one output per class of the dataset
  (:func:`check_head`: one line naming both sizes);
* ``class_order`` (the dataset's class name of each head output, in the checkpoint's order) permutes
  the head's rows into the dataset's class order (:func:`reorder_head`); without it the orders are
  taken to be the same;
* the model's identity is the bytes of its weights (:func:`weights_digest`): the same file runs once,
  a changed file runs again, wherever it lies.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import timm
import torch

from .factory import ModelInfo, create_model, local_strategy, resolve
from .hf import folder_weights
from .weights import (
    cached_hub_file,
    classifier_prefixes,
    fit_state_dict,
    hub_reachable,
    hub_state_dict,
    load_state_dict_file,
)

_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime_ns) -> sha256: a file is hashed once per process


class GivenWeightsError(ValueError):
    """Weights that cannot be evaluated as given (no head, a head of another size, a bad class order)."""


def _file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def weights_digest(weights: str | Path | None = None, hub_file: str | Path | None = None) -> str | None:
    """sha256 of the weights' bytes: a file's, or over a folder's files (names and bytes, sorted; dot
    files left out), or of the cached hub file; None when there is nothing to read."""
    path = Path(weights) if weights is not None else (Path(hub_file) if hub_file else None)
    if path is None or not path.exists():
        return None
    if path.is_file():
        return _file_digest(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        h.update(f.relative_to(path).as_posix().encode() + b"\0" + _file_digest(f).encode())
    return h.hexdigest()


def hub_cache_file(name: str) -> str | None:
    """The cached hub weights of a zoo / timm name (None when not in the local Hugging Face cache)."""
    entry = resolve(name)
    probe = timm.create_model(entry.timm_name, pretrained=False, num_classes=0)
    return cached_hub_file(dict(probe.pretrained_cfg or {}))


def read_weights(weights: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict, timm build overrides) of a local file or checkpoint folder (overrides: from a folder's
    config.json; empty for a file)."""
    path = Path(weights)
    if path.is_dir():
        return folder_weights(path)
    return load_state_dict_file(path), {}


def head_size(model: torch.nn.Module, sd: dict[str, torch.Tensor]) -> int | None:
    """Outputs of the classification head in ``sd`` (the model's classifier keys), None without one."""
    for prefix in classifier_prefixes(model):
        w = sd.get(prefix + "weight")
        if w is not None and w.ndim == 2:
            return int(w.shape[0])
    return None


def check_head(model: torch.nn.Module, sd: dict, classes: list[str] | tuple[str, ...], source: str) -> None:
    n = head_size(model, sd)
    if n is None:
        raise GivenWeightsError(f"{source}: has no classification head, so it cannot be evaluated as given "
                                f"(fine-tune it instead: remove fine_tuning = 'as given')")
    if n != len(classes):
        raise GivenWeightsError(f"{source}: its head has {n} outputs but the dataset has {len(classes)} classes "
                                f"({', '.join(classes)})")


def class_permutation(class_order: list[str] | None, classes: list[str] | tuple[str, ...], source: str) -> list[int]:
    """``perm[j]``: the checkpoint's output index of the dataset's class ``j`` (identity without an order)."""
    if not class_order:
        return list(range(len(classes)))
    if sorted(class_order) != sorted(classes) or len(set(class_order)) != len(class_order):
        missing, extra = sorted(set(classes) - set(class_order)), sorted(set(class_order) - set(classes))
        raise GivenWeightsError(f"{source}: class_order must name each of the dataset's classes once "
                                f"({', '.join(classes)}); missing {missing}, unknown {extra}")
    return [class_order.index(c) for c in classes]


def reorder_head(model: torch.nn.Module, perm: list[int]) -> None:
    """Permute the rows of every classifier (weight and bias) so output ``j`` is the dataset's class ``j``."""
    if perm == list(range(len(perm))):
        return
    idx = torch.tensor(perm)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for prefix in dict.fromkeys(classifier_prefixes(model)):  # each once: 'head.' can be named twice
            for p in ("weight", "bias"):
                t = params.get(prefix + p)
                if t is not None and t.shape[0] == len(perm):
                    t.copy_(t[idx].clone())


def load_given(name: str, classes: list[str] | tuple[str, ...], *, weights: str | Path | None = None,
               hub: bool = False, class_order: list[str] | None = None,
               **overrides) -> tuple[torch.nn.Module, ModelInfo]:
    """The model ``name`` with the given weights and their own head (checked against ``classes``), its
    outputs put in the dataset's class order; raises :class:`GivenWeightsError` / ``RuntimeError`` (a
    state dict of another architecture) with one line."""
    if weights is not None:
        source = str(weights)
        sd, folder_kwargs = read_weights(weights)
        strategy = None
    elif hub:
        entry = resolve(name)
        source = f"hub weights of {name!r}"
        sd, folder_kwargs = hub_state_dict(name, entry.timm_name, {**entry.kwargs, **overrides}, head=True), {}
        strategy = entry.strategy if entry.strategy != "random" else None
    else:
        raise GivenWeightsError(f"model {name!r}: fine_tuning = 'as given' needs weights (a file or folder) or "
                                f"pretrained = true (the hub weights)")
    perm = class_permutation(class_order, classes, source)
    kwargs = {**overrides, **folder_kwargs}
    model, info = create_model(name, len(classes), pretrained=False, **kwargs)
    check_head(model, sd, classes, source)
    fit_state_dict(model, sd, source)
    reorder_head(model, perm)
    if weights is not None:
        strategy = local_strategy(Path(weights)) if Path(weights).is_file() else "local"
    info = ModelInfo(**{**info.__dict__, "strategy": strategy or info.strategy})
    return model.eval(), info


def describe_source(weights: str | None, hub: bool, name: str) -> tuple[str, str]:
    """(where the weights of a model entry come from, 'present' / 'MISSING' / 'to download') for
    ``run --dry-run``; a hub entry not in the cache is 'to download' when the hub can be reached."""
    if weights:
        p = Path(weights)
        kind = "folder" if p.is_dir() else "file"
        return f"{kind} {p}", "present" if p.exists() else "MISSING"
    if hub:
        try:
            hit = hub_cache_file(name)
        except Exception:  # noqa: BLE001 - an unknown name is reported by the preflight
            hit = None
        tag = resolve(name).timm_name
        if hit:
            return f"hub {tag} (cache {hit})", "present"
        home = os.environ.get("HF_HOME") or "~/.cache/huggingface"
        return f"hub {tag} (not in the cache under {home})", "to download" if hub_reachable() else "MISSING"
    return "random init (no weights)", "present"
