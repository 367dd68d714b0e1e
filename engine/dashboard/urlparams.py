"""What a page says about a URL parameter that does not apply (pure; the widgets show it once, since
the widget then writes its valid choice back into the URL).  The notes are Markdown: URL values, which
anyone who sends a link chooses, go into code spans (:func:`.safe.code`), so they render as text."""
from __future__ import annotations

from .safe import code


def choice_note(key: str, raw, values, shown) -> str | None:
    """The note for ``key=raw`` when ``raw`` is not among ``values`` (None when it is, or is absent)."""
    if raw is None or raw in values:
        return None
    some = ", ".join(code(v) for v in list(values)[:6]) + (", …" if len(values) > 6 else "")
    return (f"URL parameter {code(f'{key}={raw}')} does not apply here (choices: {some}); showing {code(shown)} "
            f"instead.")


def range_note(key: str, raw, lo: float, hi: float) -> str | None:
    """The note for a ``key=low~high`` range that cannot be read or lies outside [lo, hi]."""
    if raw in (None, ""):
        return None
    parts = str(raw).split("~")
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        return f"URL parameter {code(f'{key}={raw}')} is not a range `low~high`; showing {lo:g}–{hi:g}."
    if not (lo <= a <= hi and lo <= b <= hi) or a != a or b != b:
        return f"URL parameter {code(f'{key}={raw}')} lies outside {lo:g}–{hi:g}; clipped to that range."
    if a > b:
        return f"URL parameter {code(f'{key}={raw}')} has its ends swapped; read as {b:g}~{a:g}."
    return None


def number_note(key: str, raw, lo: float, hi: float) -> str | None:
    """The note for a one-value ``key=raw`` that cannot be read or lies outside [lo, hi]."""
    if raw in (None, ""):
        return None
    try:
        v = float(raw)
    except (TypeError, ValueError):
        return f"URL parameter {code(f'{key}={raw}')} is not a number; showing the default."
    if not lo <= v <= hi:
        return f"URL parameter {code(f'{key}={raw}')} lies outside {lo:g}–{hi:g}; clipped to that range."
    return None
