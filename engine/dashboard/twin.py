"""Gap on the twin (docs/metrics.md, "Guards"): each method's gap to both baseline maps on the model's
random-weights twin, beside the trained model's gap, and the flag *the random-weights twin gains as much*.

A gain that a model with random weights also gets is not evidence about what the trained model learned
(issue 23: Integrated Gradients' insertion gap to the centre map, +0.085 trained, +0.070 on the twin).
Pure functions of a :func:`.guards.with_guards` frame whose rows carry ``twin_model_id`` (the stored
``model_quality.twin_model_id``) and the gap CIs stored at ingest.
"""
from __future__ import annotations

import pandas as pd

TWIN_GAINS = "the random-weights twin gains as much"
KINDS = ("random", "centre")


def gains_as_much(gap, lo, hi, twin_gap, higher: bool) -> bool:
    """Whether a twin's gap to a baseline matches the trained model's: the trained gap is a gain (its 95 % CI
    lies wholly on the better side of 0; a gap indistinguishable from 0 has nothing to match) and the twin's
    gap lies inside that CI or beyond it on the better side."""
    if any(v is None or v != v for v in (gap, lo, hi, twin_gap)):
        return False
    if (lo <= 0) if higher else (hi >= 0):
        return False
    return twin_gap >= lo if higher else twin_gap <= hi


def with_twin(board: pd.DataFrame) -> pd.DataFrame:
    """Add ``twin_gap_random`` / ``twin_gap_centre`` (the same method's gap on the model's twin, matched by
    label, NaN where the twin has no such row) and ``twin_gains`` (the baselines, 'random' / 'centre',
    on which :func:`gains_as_much` holds, comma-separated; '' where none)."""
    b = board.copy()
    for col in ("twin_model_id", *(f"gap_{k}_ci_{e}" for k in KINDS for e in ("low", "high"))):
        if col not in b:
            b[col] = None
    index = {(m, lab): (gr, gc) for m, lab, gr, gc in zip(b["model_id"], b["label"], b["gap_random"],
                                                         b["gap_centre"])}
    twin = [index.get((t, lab), (None, None)) if isinstance(t, str) else (None, None)
            for t, lab in zip(b["twin_model_id"], b["label"])]
    b["twin_gap_random"] = pd.array([t[0] for t in twin], dtype="Float64").astype(float)
    b["twin_gap_centre"] = pd.array([t[1] for t in twin], dtype="Float64").astype(float)
    gains = []
    for r in b.to_dict("records"):
        higher = bool(r.get("higher_is_better", True))
        gains.append(", ".join(k for k in KINDS if not r.get("baseline") and gains_as_much(
            _f(r[f"gap_{k}"]), _f(r[f"gap_{k}_ci_low"]), _f(r[f"gap_{k}_ci_high"]), _f(r[f"twin_gap_{k}"]),
            higher)))
    b["twin_gains"] = gains
    return b


def _f(v) -> float | None:
    return None if v is None or v != v or v is pd.NA else float(v)


def twin_cell(gap, twin_gap) -> str:
    """'+0.085 / twin +0.070' (the twin part only where the twin has the row)."""
    if gap is None or gap != gap:
        return "–"
    return f"{gap:+.3f}" + ("" if twin_gap is None or twin_gap != twin_gap else f" / twin {twin_gap:+.3f}")


def twin_warning(row) -> str:
    """The flag where the twin gains as much, naming the baselines."""
    if not row.get("twin_gains"):
        return ""
    return f"{TWIN_GAINS} (vs the {row['twin_gains'].replace(', ', ' and ')} map)"
