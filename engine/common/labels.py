"""How a (method, parameters) variant reads everywhere: one home for the label the summaries store and the
dashboard shows."""
from __future__ import annotations

import json

BASELINE_PREFIX = "baseline_"   # chance maps: summarised and tested like any method, never ranked
# a method whose maps are degenerate on more than this share of the images it explained is marked wherever it
# is ranked (its mean is over the rest, and it shrinks the shared images every method is ranked on)
MAX_DEGENERATE_SHARE = 0.10


def is_baseline(method: str) -> bool:
    """Whether ``method`` (a name or a display label) is a chance map (never ranked)."""
    return str(method).startswith(BASELINE_PREFIX)


def degenerate_share(n: int, n_undefined: int, n_degenerate: int) -> float:
    """Share of the images a method explained whose map was degenerate (NaN when it explained none)."""
    total = (n or 0) + (n_undefined or 0) + (n_degenerate or 0)
    return (n_degenerate or 0) / total if total else float("nan")


def method_label(method: str, params: str | dict | None) -> str:
    """How a (method, parameters) variant reads everywhere: ``integrated_gradients (n_steps=8)``,
    ``attention (layer=-1)``; the bare name without parameters."""
    if params in ("{}", "", None):
        return method
    try:
        values = json.loads(params) if isinstance(params, str) else params
    except ValueError:
        return f"{method} {params}"
    if not isinstance(values, dict) or not values:
        return method
    return f"{method} ({', '.join(f'{k}={_value(v)}' for k, v in sorted(values.items()))})"


def _value(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def relabel(stored: str) -> str:
    """A label as older databases stored it (``name {json}``) in today's form (same text otherwise)."""
    name, sep, params = str(stored).partition(" ")
    return method_label(name, params) if sep and params.startswith("{") else stored
