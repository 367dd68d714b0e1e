"""What the numbers are worth, for every page, the report and the exports (docs/dashboard.md, "Guards").

Queries read the guard rows stored at ingest (``model_quality``, ``region_stats``, the guard columns of
``summary``); the pure functions turn a leaderboard frame (:func:`engine.dashboard.queries.leaderboard`)
into the columns and lines the pages show.  No Streamlit here.
"""
from __future__ import annotations

import pandas as pd

from ..common.labels import method_label
from ..common.verdicts import ALPHA, NEAR_CHANCE, headline, quality_note, verdict
from .queries import frame
from .reader import cursor

__all__ = ["NEAR_CHANCE", "quality_note"]


def _has(src, table: str) -> bool:
    """Whether the database has ``table`` (a database older than schema 5 lacks the guard tables)."""
    sql = "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ?"
    return bool(frame(src, sql, [table])["n"].iloc[0])


def model_quality(path, dataset_id: str | None = None) -> pd.DataFrame:
    """The stored quality rows (one per model) with the model's init; empty for an older database."""
    with cursor(path) as con:
        if not _has(con, "model_quality"):
            return pd.DataFrame(columns=["dataset_id", "model_id", "near_chance"])
        return frame(con, """
            SELECT q.*, m.init, m.name FROM model_quality q LEFT JOIN models m USING (model_id)
            WHERE ? IS NULL OR q.dataset_id = ? ORDER BY q.dataset_id, q.model_id""", [dataset_id, dataset_id])


def near_chance_models(path, dataset_id: str | None = None) -> set[str]:
    q = model_quality(path, dataset_id)
    return set(q.loc[q["near_chance"].fillna(False).astype(bool), "model_id"])


def centre_share(path, dataset_id: str) -> pd.DataFrame:
    """Per region type: images with a non-empty region and the share of those regions covering the image
    centre (the strength of the centre prior on this dataset)."""
    with cursor(path) as con:
        if not _has(con, "region_stats"):
            return pd.DataFrame(columns=["region", "images", "covers_centre", "mean_area"])
        return frame(con, """
            SELECT region, count(*) AS images, avg(covers_centre::DOUBLE) AS covers_centre, avg(area) AS mean_area
            FROM region_stats WHERE dataset_id = ? AND area > 0 GROUP BY region ORDER BY region""", [dataset_id])


def near_chance_lines(path, dataset_id: str, model_ids) -> list[str]:
    """:func:`near_chance_banner` of the stored quality rows of one dataset."""
    return near_chance_banner(model_quality(path, dataset_id), model_ids)


def near_chance_banner(quality: pd.DataFrame, model_ids) -> list[str]:
    """One line per flagged model among ``model_ids`` (from :func:`model_quality` rows)."""
    q = quality[quality.model_id.isin(list(model_ids))]
    return [f"{r['model_id']} — {NEAR_CHANCE} ({quality_note(r)})" for r in q.to_dict("records")
            if r.get("near_chance")]


def _p(p) -> str:
    return "" if p is None or p != p else f"{p:.2g}"


def _gap(g) -> float | None:
    return None if g is None or g != g else float(g)


def substrate_warning(row) -> str:
    """A warning where the method's own baseline equals the faithfulness substrate (e.g. Integrated
    Gradients' zero baseline scored by deletion to zeros: the metric rewards the method's reference)."""
    base, sub = row.get("method_baseline"), row.get("substrate")
    if base is None or sub is None or base != base or sub != sub or base != sub:
        return ""
    return f"baseline = substrate ({sub}): scored against its own reference; see the blurred substrate"


def with_guards(board: pd.DataFrame) -> pd.DataFrame:
    """A :func:`~engine.dashboard.queries.leaderboard` frame plus ``label``, ``baseline`` (a chance row),
    the baseline verdicts, the substrate warning and ``n_degenerate`` (0 where not recorded)."""
    b = board.copy()
    b["label"] = [method_label(m, p) for m, p in zip(b["method"], b["method_params"])]
    if "metric_params" in b and b["metric_params"].nunique() > 1:  # e.g. deletion on two substrates
        b["label"] = [f"{lab} [substrate {s}]" if isinstance(s, str) else f"{lab} [{mp}]"
                      for lab, s, mp in zip(b["label"], b.get("substrate", [None] * len(b)), b["metric_params"])]
    b["baseline"] = b["method"].str.startswith("baseline_")
    for col in ("gap_random", "p_random", "gap_centre", "p_centre", "substrate", "method_baseline", "near_chance"):
        if col not in b:
            b[col] = None
    b["n_degenerate"] = b.get("n_degenerate", pd.Series(0, index=b.index)).fillna(0).astype(int)
    b["vs_random"] = [verdict(_gap(g), _gap(p), h) for g, p, h in zip(b.gap_random, b.p_random, b.higher_is_better)]
    b["vs_centre"] = [verdict(_gap(g), _gap(p), h) for g, p, h in zip(b.gap_centre, b.p_centre, b.higher_is_better)]
    b["warning"] = [substrate_warning(r) for r in b.to_dict("records")]
    b["near_chance"] = b["near_chance"].fillna(False).astype(bool)
    return b


def headlines(board: pd.DataFrame) -> dict[str, str]:
    """Per model of a :func:`with_guards` frame: which methods beat both baselines, or which do not."""
    out = {}
    several = "metric_params" in board and board["metric_params"].nunique() > 1  # e.g. two deletion substrates
    for key, g in board.groupby(["model_id", "metric_params"] if several else ["model_id"], sort=True):
        model_id = key[0] if not several else f"{key[0]} ({_params_name(g)})"
        real = g[~g["baseline"]].rename(columns={"label": "method_label"})
        rows = pd.DataFrame({"method": real["method_label"], "gap_random": real.gap_random.astype(float),
                             "p_random": real.p_random.astype(float), "gap_centre": real.gap_centre.astype(float),
                             "p_centre": real.p_centre.astype(float)})
        higher = bool(g["higher_is_better"].iloc[0]) if len(g) else True
        out[model_id] = headline(rows, higher, ALPHA)
    return out


def _params_name(g: pd.DataFrame) -> str:
    sub = g["substrate"].dropna() if "substrate" in g else []
    return f"substrate {sub.iloc[0]}" if len(sub) else str(g["metric_params"].iloc[0])


def guard_columns(board: pd.DataFrame) -> pd.DataFrame:
    """The guard columns as a page shows them (from :func:`with_guards`)."""
    def fmt(g, p, v):
        return "–" if v is None or v != v else f"{g:+.3f} (p {_p(p)}, {v})"
    return pd.DataFrame({
        "n degenerate": board["n_degenerate"],
        "vs random map": [fmt(g, p, v) for g, p, v in zip(board.gap_random, board.p_random, board.vs_random)],
        "vs centre map": [fmt(g, p, v) for g, p, v in zip(board.gap_centre, board.p_centre, board.vs_centre)],
        "warning": board["warning"],
    }, index=board.index)
