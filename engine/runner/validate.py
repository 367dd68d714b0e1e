"""Checks of an experiment's values against the code they configure, and the checks a run makes before
any work: every failure is one line naming the file (or block) and the key.

* :func:`check_params` -- method / metric parameters: known names and the types of the function's
  annotations (``layer = "deep"`` for an ``int`` is refused here, not as a formatting error mid-run);
* :func:`check_config` -- ``train``, ``grid`` and ``pretrain_params`` values against the
  :class:`~engine.models.TrainConfig` / ``PretrainConfig`` field types, with the ranges that matter
  (``epochs >= 1``, ``lr > 0``, ...);
* :func:`preflight` -- what only the file system and the model zoo can say: the work and checkpoint
  folders are writable, model names exist, ``weights`` files are checkpoints, generator parameters
  build a config.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
import uuid
from pathlib import Path
from typing import Any, Literal

import timm

from ..data.synthetic import GENERATORS
from ..models.factory import resolve
from ..models.weights import load_state_dict_file

RESERVED = {"model", "images", "targets", "return_curves", "maps", "regions", "trace", "memory_budget",
            "precision"}  # passed by the runner
AT_LEAST_ONE = {"epochs", "steps", "batch_size", "n_steps", "nt_samples", "window", "perturbations_per_eval",
                "internal_batch_size", "source_n", "size", "dino_out_dim", "dino_hidden", "dino_bottleneck",
                "mae_decoder_dim", "mae_decoder_depth", "mae_decoder_heads"}
POSITIVE = {"lr", "dino_student_temp", "dino_teacher_temp", "looks", "k"}
MAX_GENERATED = 1_000_000      # images per split of a generated dataset
MAX_GENERATED_SIZE = 2048      # pixels per side of a generated image


def _type_name(hint) -> str:
    """'an int', 'a float', 'a str', 'int | None', ... for messages."""
    name = getattr(hint, "__name__", None)
    if name in ("int", "float", "str", "bool"):
        return {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}[name]
    return "of type " + str(hint).replace("typing.", "")


def value_fits(value, hint) -> bool:
    """``value`` (as TOML gives it) fits the annotation ``hint`` without coercion (no "3" for 3, no
    true for 1); annotations this does not know are not checked."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(value_fits(value, a) for a in args)
    if hint is type(None) or hint is None:
        return value is None
    if origin is Literal:
        return value in args
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(value_fits(v, a) for v, a in zip(value, args))
        return all(value_fits(v, args[0]) for v in value) if args else True
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


def _range_error(key: str, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if key in AT_LEAST_ONE and value < 1:
        return f"{key} = {value!r}: must be at least 1"
    if key in POSITIVE and not value > 0:
        return f"{key} = {value!r}: must be greater than 0"
    if key != "layer" and key != "start_layer" and value < 0:
        return f"{key} = {value!r}: must not be negative"
    return None


def _hints(obj) -> dict:
    try:
        return typing.get_type_hints(obj)
    except Exception:  # an annotation that cannot be resolved is simply not checked
        return {}


def check_params(kind: str, name: str, fn, params, skip: int) -> None:
    """Raise ValueError (one line) for unknown parameters or values of the wrong type / range."""
    if not isinstance(params, dict):
        raise ValueError(f"{kind} {name!r}: parameters must be a table, got {params!r}")
    sig = inspect.signature(fn)
    allowed = [p for p in list(sig.parameters)[skip:] if p not in RESERVED
               and sig.parameters[p].kind is not inspect.Parameter.VAR_KEYWORD]
    bad = sorted(set(params) - set(allowed))
    if bad:
        raise ValueError(f"{kind} {name!r}: unknown parameter(s) {bad}; allowed: {allowed}")
    hints = _hints(fn)
    for key, value in params.items():
        hint = hints.get(key, sig.parameters[key].annotation)
        if not value_fits(value, hint):
            raise ValueError(f"{kind} {name!r}: {key} = {value!r} is not {_type_name(hint)}")
        msg = _range_error(key, value)
        if msg:
            raise ValueError(f"{kind} {name!r}: {msg}")


def check_config(field_name: str, cls, values: dict, grid: bool = False) -> None:
    """Keys, types and ranges of a ``train`` / ``grid`` / ``pretrain_params`` table (``grid``: lists of values)."""
    allowed = {f.name: f for f in dataclasses.fields(cls)}
    bad = sorted(set(values) - set(allowed))
    if bad:
        raise ValueError(f"unknown {field_name} key(s) {bad}; allowed: {sorted(allowed)}")
    hints = _hints(cls)
    for key, value in values.items():
        if grid and not isinstance(value, list):
            raise ValueError(f"grid.{key} = {value!r}: expected a list of values to try")
        for v in (value if grid else [value]):
            hint = hints.get(key, Any)
            if not value_fits(v, hint):
                raise ValueError(f"{field_name}.{key} = {v!r} is not {_type_name(hint)}")
            msg = _range_error(key, v)
            if msg:
                raise ValueError(f"{field_name}.{msg}")
    if grid and any(not vals for vals in values.values()):
        raise ValueError("every grid key needs at least one value")


def config_from_toml(cls, params: dict, base=None):
    """A generator config from TOML values (on top of ``base``): nested tables become nested
    configs, arrays tuples."""
    out = {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    for k, v in params.items():
        if k not in names:
            raise ValueError(f"unknown key {k!r}; allowed: {sorted(names)}")
        current = getattr(base, k) if base is not None else (
            names[k].default if names[k].default is not dataclasses.MISSING else names[k].default_factory())
        if isinstance(v, dict) and dataclasses.is_dataclass(current):
            v = config_from_toml(type(current), v, current)
        elif isinstance(v, list):
            v = tuple(v)
        out[k] = v
    return dataclasses.replace(base, **out) if base is not None else cls(**out)


def generator_config(gen: str, cfg_cls, params, where: str):
    """The generator's config from TOML values: known keys, their types, sane sizes (one-line ValueError)."""
    if not isinstance(params, dict):
        raise ValueError(f"{where}: params must be a table, got {params!r}")
    hints = _hints(cfg_cls)
    for key, value in params.items():
        if key in hints and not isinstance(value, dict) and not value_fits(value, hints[key]):
            raise ValueError(f"{where}: params.{key} = {value!r} is not {_type_name(hints[key])}")
        msg = _range_error(key, value)
        if msg:
            raise ValueError(f"{where}: params.{msg}")
        if key.startswith("n_") and isinstance(value, int) and value > MAX_GENERATED:
            raise ValueError(f"{where}: params.{key} = {value}: at most {MAX_GENERATED:,} generated images per split")
        if key == "size" and isinstance(value, int) and value > MAX_GENERATED_SIZE:
            raise ValueError(f"{where}: params.size = {value}: at most {MAX_GENERATED_SIZE} pixels per side")
    try:
        return config_from_toml(cfg_cls, params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: bad generator params for {gen!r} ({' '.join(str(exc).split())})") from None


def writable_dir(path: Path, what: str) -> None:
    """Create ``path`` if needed and prove it takes a file; ValueError (one line) otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{path}: the {what} is not a writable folder ({exc.strerror or exc})") from None


def preflight(exp, work_dir: Path) -> None:
    """What must hold before a run does any work (raises ValueError naming the block and the key)."""
    writable_dir(work_dir, "work_dir")
    writable_dir((work_dir / exp.checkpoints).resolve(), "checkpoints folder")
    for i, m in enumerate(exp.models):
        where = f"models.{i} ({m.key})"
        try:
            resolve(m.name)
        except ValueError as exc:
            raise ValueError(f"{where}: name: {exc}") from None
        if m.weights:
            path = exp.resolve(m.weights)
            if not path.is_file():
                raise ValueError(f"{where}: weights: {path}: no such file")
            try:
                load_state_dict_file(path)
            except Exception as exc:  # safetensors, torch.load and zip raise many types for a non-checkpoint
                reason = " ".join(str(exc).split())[:200]
                raise ValueError(f"{where}: weights: {path} is not a checkpoint (.safetensors, or a .pth state "
                                 f"dict): {type(exc).__name__}: {reason}") from None
    for i, block in enumerate(exp.datasets):
        gen = block.get("generate")
        if gen is not None:
            cfg_cls = GENERATORS[gen][0]
            generator_config(gen, cfg_cls, block.get("params", {}), f"datasets.{i} ({block['name']})")


def model_input_size(name: str) -> int | None:
    """The square input size (px) a zoo entry or timm model is built for (zoo ``img_size``, else timm's
    pretrained config), without building it; None when unknown (an unknown name: ``create_model`` names it)."""
    try:
        entry = resolve(name)
    except ValueError:
        return None
    if entry.kwargs.get("img_size"):
        return int(entry.kwargs["img_size"])
    cfg = timm.get_pretrained_cfg(entry.timm_name)
    return int(cfg.input_size[-1]) if cfg is not None and getattr(cfg, "input_size", None) else None


def check_input_sizes(exp, prepared) -> None:
    """Each dataset's ``input_size`` is the size its models take (else every training job fails)."""
    for d, block in zip(prepared, exp.datasets):
        for e in exp.model_entries(block):
            want = model_input_size(e.name)
            if want is not None and want != d.spec.input_size:
                raise ValueError(f"dataset {d.spec.name!r}: input_size = {d.spec.input_size} but model "
                                 f"{e.key!r} ({e.name}) takes {want} x {want} inputs: set input_size = {want}")
