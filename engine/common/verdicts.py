"""The verdicts a reading is given (docs/metrics.md, "Guards"), one home for the compute side that stores the
guards and the read side that shows them: the near-chance rule, the baseline verdicts and the one-line
readings, and the MPRT threshold.  Pure Python and pandas (no torch), so the read layer can import them."""
from __future__ import annotations

import math

import pandas as pd

ALPHA = 0.05
NEAR_CHANCE = "near chance: its explanations explain noise"
SURVIVES = 0.5  # MPRT: mean Spearman after full randomisation above this flags the method (the dashboard binds
#                 it into its SQL; engine.metrics.sanity computes the Spearman values)


def is_near_chance(balanced_ci_low: float | None, chance: float | None) -> bool:
    """The rule: flagged when the balanced-accuracy CI reaches 1/K (or cannot be computed)."""
    if balanced_ci_low is None or chance is None or math.isnan(balanced_ci_low) or math.isnan(chance):
        return True
    return balanced_ci_low <= chance


def quality_note(row) -> str:
    """The one-line quality reading of a ``model_quality`` row (a dict or named tuple)."""
    g = row.get if isinstance(row, dict) else lambda k: getattr(row, k, None)

    def num(v):
        return "n/a" if v is None or v != v else f"{v:.2f}"
    text = (f"balanced accuracy {num(g('balanced_accuracy'))} [{num(g('balanced_accuracy_ci_low'))}, "
            f"{num(g('balanced_accuracy_ci_high'))}] vs chance {num(g('chance_uniform'))}; accuracy "
            f"{num(g('accuracy'))} [{num(g('accuracy_ci_low'))}, {num(g('accuracy_ci_high'))}] vs majority class "
            f"{num(g('chance_majority'))}; n = {g('n')}")
    if g("twin_model_id"):
        text += (f"; vs random-weights twin {num(g('twin_diff'))} [{num(g('twin_diff_ci_low'))}, "
                 f"{num(g('twin_diff_ci_high'))}]")
    return text


def verdict(gap: float | None, p_holm: float | None, higher_is_better: bool, alpha: float = ALPHA) -> str | None:
    """'beats' / 'below' (significantly better / worse than the baseline), 'n.s.', or None without a test."""
    if gap is None or p_holm is None or gap != gap or p_holm != p_holm:
        return None
    if p_holm >= alpha or gap == 0:
        return "n.s."
    return "beats" if (gap > 0) == bool(higher_is_better) else "below"


def headline(rows: pd.DataFrame, higher_is_better: bool, alpha: float = ALPHA) -> str:
    """One model's verdict on one (metric, region) from its non-baseline rows with ``method`` (label),
    ``gap_random``, ``p_random``, ``gap_centre``, ``p_centre``."""
    if rows.empty:
        return "no method scored"
    has_r, has_c = rows["p_random"].notna().any(), rows["p_centre"].notna().any()
    if not has_r and not has_c:
        return "no baseline map was run: nothing says these scores beat chance"
    vr = [verdict(g, p, higher_is_better, alpha) for g, p in zip(rows.gap_random, rows.p_random)]
    vc = [verdict(g, p, higher_is_better, alpha) for g, p in zip(rows.gap_centre, rows.p_centre)]
    both = [m for m, a, b in zip(rows.method, vr, vc) if (a == "beats" or not has_r) and (b == "beats" or not has_c)]
    missing = " (no centre-map baseline run)" if not has_c else " (no random-map baseline run)" if not has_r else ""
    if both:
        what = "both baselines" if has_r and has_c else "the baseline"
        return f"{', '.join(sorted(both))} beat{'s' if len(both) == 1 else ''} {what} (Holm p < {alpha:g}){missing}"
    if has_c and not any(v == "beats" for v in vc):
        return "no method beats the centre baseline"
    if has_r and not any(v == "beats" for v in vr):
        return "no method beats the random baseline"
    return "no method beats both baselines"
