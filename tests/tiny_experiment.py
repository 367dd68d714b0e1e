"""The tiny experiment, ``data/experiments/tiny.toml``, with per-use overrides applied in code: the one
experiment file behind the runner tests, the bf16 test and bench/gpu_check.sh's CPU dry run.

``python tests/tiny_experiment.py OUT.toml [VARIANT]`` writes it, or one of the named variants below
(bench/gpu_check.sh writes ``gpu_check``)."""
from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

from engine import PROJECT_ROOT

TINY_FILE = PROJECT_ROOT / "data" / "experiments" / "tiny.toml"


def tiny(**overrides) -> dict:
    """The tiny experiment as a dict, with ``overrides`` replacing its top-level keys."""
    return {**tomllib.loads(TINY_FILE.read_text(encoding="utf-8")), **overrides}


def to_toml(data: dict) -> str:
    """An experiment dict as TOML: scalars first, a dict as a ``[table]``, a list of dicts as ``[[tables]]``,
    values inline (strings, numbers, booleans, lists, inline tables)."""
    head, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables += ["", f"[{key}]", *(f"{k} = {_inline(v)}" for k, v in value.items())]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for entry in value:
                tables += ["", f"[[{key}]]", *(f"{k} = {_inline(v)}" for k, v in entry.items())]
        else:
            head.append(f"{key} = {_inline(value)}")
    return "\n".join(head + tables) + "\n"


def _inline(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if isinstance(value, (str, bool, int, float)):
        return json.dumps(value)  # a JSON string, number or boolean is the same TOML value
    raise TypeError(f"no TOML form for {type(value).__name__}")


def gpu_check() -> dict:
    """bench/gpu_check.sh's dry run: one fine-tuned model; attention, chefer_lrp (kept in fp32) and a Captum
    method; the pointing game and insertion; MPRT of attention (what bench/precision_agreement.py compares)."""
    base = tiny()
    return {"name": "gpu-check-tiny", "work_dir": "work", "models": base["models"][:1],
            "methods": {"attention": {}, "chefer_lrp": {}, "saliency": {}},
            "metrics": {"pointing_game": {}, "insertion_auc": {"n_steps": 2}},
            "sanity": {"images": 2, "methods": ["attention"]}}


VARIANTS = {"tiny": dict, "gpu_check": gpu_check}


def write_tiny(path: Path, **overrides) -> Path:
    """Write the tiny experiment with ``overrides`` to ``path`` (folders made); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml(tiny(**overrides)), encoding="utf-8")
    return path


if __name__ == "__main__":
    write_tiny(Path(sys.argv[1]), **VARIANTS[sys.argv[2] if len(sys.argv) > 2 else "tiny"]())
