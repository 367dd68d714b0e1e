"""The model a page is about: the fine-tuned model first, its random-weights twin as its reference.

A study's random-weights twin (fine-tuning state ``untrained``) is at chance by design: it is the
reference that shows what a method's map looks like when the model has learnt nothing.  Pages order,
sort and headline by the selected fine-tuned model, and say of the twin that it is at chance by design
instead of warning about it (docs/dashboard.md, "Guards").  Pure functions of the pickers' rows
(:func:`.queries_compare.model_options`) and the stored quality rows (:func:`.guards.model_quality`).
"""
from __future__ import annotations

import pandas as pd

from .guards import NEAR_CHANCE, quality_note
from .labels import model_labels

UNTRAINED = "untrained"
TWIN_NOTE = "random weights, at chance by design: the reference for the fine-tuned model, not a finding"


def untrained_models(models: pd.DataFrame) -> set[str]:
    """The random-weights models among ``models`` rows (``model_id``, ``fine_tuning``)."""
    if "fine_tuning" not in models:
        return set()
    return set(models.loc[models["fine_tuning"] == UNTRAINED, "model_id"])


def focus_model(models: pd.DataFrame, dataset_id: str, among=None) -> str | None:
    """The model a page opens on: the fine-tuned model of ``dataset_id`` (optionally only those in
    ``among``) with the highest test accuracy; a random-weights model only when there is no other."""
    here = models[models.dataset_id == dataset_id]
    if among is not None:
        here = here[here.model_id.isin(list(among))]
    if here.empty:
        return None
    tuned = here.assign(_twin=here.model_id.isin(untrained_models(here)))
    acc = tuned["test_accuracy"] if "test_accuracy" in tuned else pd.Series(float("nan"), index=tuned.index)
    tuned = tuned.assign(_acc=acc).sort_values(["_twin", "_acc", "model_id"], ascending=[True, False, True],
                                               na_position="last")
    return str(tuned.model_id.iloc[0])


def model_order(model_ids, focus: str | None, untrained: set[str] = frozenset()) -> list[str]:
    """``model_ids`` in the order a page shows them: the focus model, the other fine-tuned models, then the
    random-weights twins (each group by id)."""
    ids = sorted(set(model_ids))
    return sorted(ids, key=lambda m: (m != focus, m in untrained, m))


def method_order(board: pd.DataFrame, focus: str | None, higher: bool, by: str = "method") -> list[str]:
    """The methods (``by`` values) of a table with ``model_id``, ``by`` and ``mean``, best first by the focus
    model's mean; methods the focus model lacks after them, by their best mean over the other models."""
    if board.empty:
        return []
    sign = -1.0 if higher else 1.0
    own = board[board.model_id == focus].groupby(by)["mean"].mean() * sign
    other = board.groupby(by)["mean"].agg("max" if higher else "min") * sign
    key = pd.DataFrame({"own": own.reindex(other.index), "other": other})
    key = key.assign(missing=key["own"].isna()).sort_values(["missing", "own", "other"], na_position="last",
                                                            kind="stable")
    return list(key.index)


def chance_lines(quality: pd.DataFrame, model_ids, focus: str | None = None,
                 untrained: set[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(warnings, notes) of the near-chance guard for the models a page shows (``model_ids``: one, the
    selected model, on a page about one model), in :func:`model_order` with ``focus`` first.  A near-chance
    fine-tuned model gets a warning ("<model> — near chance ... (<quality>)"); a random-weights twin gets a
    short note that it is at chance by design (whatever its numbers), never the warning."""
    shown = model_order(model_ids, focus, untrained)
    rows = {r["model_id"]: r for r in quality.to_dict("records")} if len(quality) else {}
    labels = model_labels(shown)
    warnings, notes = [], []
    for mid in shown:
        if mid in untrained:
            notes.append(f"{labels[mid]}: {TWIN_NOTE}.")
        elif mid in rows and rows[mid].get("near_chance"):
            warnings.append(f"{mid} — {NEAR_CHANCE} ({quality_note(rows[mid])})")
    return warnings, notes
