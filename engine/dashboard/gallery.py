"""The Gallery page's card text, as pure functions of the rows :func:`.queries.gallery` returns."""
from __future__ import annotations

DEFAULT_CARD_SCORE = "pointing_game · mask"


def card_choice(choices: list[str], filter_choice: str | None) -> str | None:
    """The score a card shows when the URL names none: the filtered score, else pointing game on the mask,
    else the first one there is."""
    if filter_choice in choices:
        return filter_choice
    if DEFAULT_CARD_SCORE in choices:
        return DEFAULT_CARD_SCORE
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
