"""The Gallery page's card text, as pure functions of the rows :func:`.queries.gallery` returns."""
from __future__ import annotations

DEFAULT_CARD_SCORE = "pointing_game · mask"


def card_choice(choices: list[str], filter_choice: str | None, default: str = DEFAULT_CARD_SCORE) -> str | None:
    """The score a card shows when the URL names none: the filtered score, else ``default`` (the page
    passes pointing game on the dataset's first mask region), else the first one there is."""
    if filter_choice in choices:
        return filter_choice
    if default in choices:
        return default
    return choices[0] if choices else None


def card_score(scores, choice: str | None) -> str:
    """The one line of a card's ``scores`` (``"metric · region value"`` strings) for ``choice``
    (``"metric · region"``); 'not scored' when the image has no such score."""
    if choice is None:
        return "not scored"
    for line in scores if scores is not None else []:
        if line.startswith(choice + " "):
            return line
    return f"{choice}: not scored"
