"""The Gallery page's card text and the model's confusion matrix, as pure functions of the rows
:func:`.queries.gallery` and :func:`.queries.model_confusion` return."""
from __future__ import annotations

import json

import pandas as pd

SCORE_SEP = " · "  # "metric · region": how a page names one score
# a map the metrics refuse (engine/metrics: degenerate maps are not scored), as a card says it
DEGENERATE = {"zero": "all-zero map (not scored)", "constant": "constant map (not scored)",
              "nonfinite": "non-finite map (not scored)"}


def score_choice(metric: str, region: str) -> str:
    """``"pointing_game · lesion"``: one score's name on the pages."""
    return f"{metric}{SCORE_SEP}{region}"


def split_choice(choice: str) -> tuple[str, str]:
    """(metric, region) of a :func:`score_choice` name."""
    metric, region = choice.split(SCORE_SEP, 1)
    return metric, region


def card_choice(choices: list[str], filter_choice: str | None, default: str | None = None) -> str | None:
    """The score a card shows when the URL names none: the filtered score, else ``default`` (the page
    passes pointing game on the dataset's first mask region), else the first one there is."""
    if filter_choice in choices:
        return filter_choice
    if default in choices:
        return default
    return choices[0] if choices else None


def degenerate_note(kind) -> str | None:
    """What a refused map was ('all-zero map (not scored)', ...); None for a scored map (``kind`` not text)."""
    return DEGENERATE.get(kind, f"{kind} map (not scored)") if isinstance(kind, str) else None


def card_score(scores, choice: str | None, degenerate: str | None = None) -> str:
    """The one line of a card's ``scores`` (``"metric · region value"`` strings) for ``choice``
    (``"metric · region"``); for a map the metrics refused (``degenerate``: zero / constant / nonfinite)
    what it was, e.g. 'all-zero map (not scored)'; else 'not scored' when the image has no such score."""
    why = degenerate_note(degenerate)
    if choice is None:
        return why or "not scored"
    for line in scores if scores is not None else []:
        if line.startswith(choice + " "):
            return line
    return f"{choice}: {why or 'not scored'}"


def confusion_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The stored confusion matrix (:func:`.queries.model_confusion` rows) as a table: one row per true
    class, one column per predicted class, image counts; empty when none is stored."""
    if rows.empty:
        return pd.DataFrame()
    matrix = json.loads(rows["confusion"].iloc[0])
    classes = [str(c) for c in rows["classes"].iloc[0]]
    if len(matrix) != len(classes) or any(len(r) != len(classes) for r in matrix):
        return pd.DataFrame()
    return pd.DataFrame(matrix, index=pd.Index([f"true {c}" for c in classes], name="true class"),
                        columns=[f"predicted {c}" for c in classes]).astype(int)
