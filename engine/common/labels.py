"""How a (method, parameters) variant reads everywhere: one home for the label the summaries store and the
dashboard shows."""
from __future__ import annotations

import json


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
