"""The shortcut check as the pages and ``report`` show it (docs/datasets.md, "Shortcut check").

The check itself (metadata alone predicting the label) runs at ingest (:mod:`engine.data.shortcut`) and is
stored in the ``shortcut`` table; here it is read back, and each model's test predictions are compared with
the metadata rule's: the share of test images on which the model predicts the class the rule predicts.
"""
from __future__ import annotations

import json

import pandas as pd

from ..data.shortcut import ShortcutResult
from .reader import cursor


def _has_table(con, table: str) -> bool:
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    return bool(con.execute(sql, [table]).fetchone()[0])


def result_of(row: dict) -> ShortcutResult:
    """A stored ``shortcut`` row as the :class:`~engine.data.shortcut.ShortcutResult` it was written from."""
    def num(v):
        return None if v is None or v != v else float(v)
    def names(v) -> tuple:  # a list column reads back as a list, a numpy array or None
        return () if v is None else tuple(str(x) for x in v)
    preds = row.get("test_predictions")
    return ShortcutResult(
        features=names(row.get("features")), candidates=names(row.get("candidates")),
        n_train=int(row.get("n_train") or 0), n_test=int(row.get("n_test") or 0),
        balanced_accuracy=num(row.get("balanced_accuracy")), ci_low=num(row.get("ci_low")),
        ci_high=num(row.get("ci_high")), chance=num(row.get("chance")), flagged=bool(row.get("flagged")),
        rule=row.get("rule") or "", reason=row.get("reason") or None,
        test_predictions={str(k): int(v) for k, v in (json.loads(preds) if isinstance(preds, str) else
                                                      preds or {}).items()})


def stored_check(path, dataset_id: str) -> tuple[ShortcutResult | None, pd.DataFrame]:
    """(the stored check of one dataset or None, the test predictions of its models: model_id, image_id,
    pred); (None, empty) for a database without the table."""
    with cursor(path) as con:
        if not _has_table(con, "shortcut"):
            return None, pd.DataFrame(columns=["model_id", "image_id", "pred"])
        rows = con.execute("SELECT * FROM shortcut WHERE dataset_id = ?", [dataset_id]).df()
        preds = con.execute("""
            SELECT p.model_id, p.image_id, p.pred FROM predictions p JOIN images i USING (dataset_id, image_id)
            WHERE p.dataset_id = ? AND i.split = 'test' ORDER BY p.model_id, p.image_id""", [dataset_id]).df()
    return (result_of(rows.iloc[0].to_dict()) if len(rows) else None), preds


def agreement_table(result: ShortcutResult | None, preds: pd.DataFrame) -> pd.DataFrame:
    """Per model: the test images both it and the metadata rule predicted (``n``) and the share on which
    its class equals the rule's (``agreement``); empty where the check did not run."""
    cols = ["model_id", "n", "agreement"]
    if result is None or not result.test_predictions or preds.empty:
        return pd.DataFrame(columns=cols)
    rule = pd.Series(result.test_predictions, name="rule")
    p = preds.join(rule, on="image_id", how="inner")
    if p.empty:
        return pd.DataFrame(columns=cols)
    agree = (p["pred"].astype(int) == p["rule"].astype(int))
    return (p.assign(agree=agree).groupby("model_id", sort=True)
            .agg(n=("agree", "size"), agreement=("agree", "mean")).reset_index()[cols])


def shortcut_lines(path, dataset_id: str, model_ids=None) -> list[tuple[str, str]]:
    """(level, text) lines for a page's guard area: the check's line ('warning' where flagged, else
    'info'), then one per shown model with its agreement with the metadata rule (where flagged)."""
    result, preds = stored_check(path, dataset_id)
    if result is None:
        return []
    out = [("warning" if result.flagged else "info", f"Shortcut check: {result.line()}")]
    if result.flagged:
        table = agreement_table(result, preds)
        if model_ids is not None:
            table = table[table.model_id.isin(list(model_ids))]
        out += [("warning", f"{r.model_id} agrees with the metadata rule on {r.agreement:.1%} of {r.n} test images")
                for r in table.itertuples()]
    return out
