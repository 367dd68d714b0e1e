"""What the numbers are worth, for every page, the report and the exports (docs/dashboard.md, "Guards").

Queries read the guard rows stored at ingest (``model_quality``, ``region_stats``, the guard columns of
``summary``); the pure functions turn a leaderboard frame (:func:`engine.dashboard.queries.leaderboard`)
into the columns and lines the pages show.  No Streamlit here.
"""
from __future__ import annotations

import pandas as pd

from ..common.labels import MAX_DEGENERATE_SHARE, degenerate_share, is_baseline, method_label
from ..common.verdicts import ALPHA, NEAR_CHANCE, headline, quality_note, verdict
from .queries import frame
from .reader import cursor
from .twin import twin_warning, with_twin

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
    return with_twin(with_shared(b))


def with_shared(b: pd.DataFrame) -> pd.DataFrame:
    """Add what ranking over the shared images needs (docs/metrics.md, "Ranked over the same images"):
    ``rank_mean`` (the mean over the shared images; the own mean where not stored, as in a version-7 row),
    ``n_common``, ``n_differs`` (the method's own n is not the shared n), ``degenerate_share`` and
    ``mostly_degenerate`` (above ``MAX_DEGENERATE_SHARE``; marked wherever the method is ranked)."""
    b = b.copy()
    for col in ("n_common", "mean_common", "n_undefined", "n_degenerate"):
        if col not in b:
            b[col] = None
    b["rank_mean"] = b["mean_common"].astype(float).fillna(b["mean"].astype(float))
    n_common = b["n_common"].astype(float)
    b["n_differs"] = n_common.notna() & (n_common != b["n"].astype(float))
    b["degenerate_share"] = [degenerate_share(*(0 if x is None or x != x else int(x) for x in t))
                             for t in zip(b["n"], b["n_undefined"], b["n_degenerate"])]
    b["mostly_degenerate"] = [not is_baseline(m) and s == s and s > MAX_DEGENERATE_SHARE
                              for m, s in zip(b["method"], b["degenerate_share"])]
    return b


def guard_warning(row) -> str:
    """Every warning of one :func:`with_guards` row, '; '-joined: baseline = substrate, mostly degenerate
    maps, the random-weights twin gaining as much."""
    return "; ".join(w for w in (row.get("warning", ""), degenerate_mark(row), twin_warning(row)) if w)


def degenerate_mark(row) -> str:
    """The mark of a method whose maps are degenerate on more than ``MAX_DEGENERATE_SHARE`` of its images."""
    if not row.get("mostly_degenerate"):
        return ""
    return (f"degenerate maps on {row['degenerate_share']:.0%} of images (> {MAX_DEGENERATE_SHARE:.0%}): "
            f"ranked on the {_int(row.get('n_common'))} images every method scored")


def shared_note(row) -> str:
    """'ranked on 14 of its 64 images' where the shared images are fewer than the method's own; else ''."""
    if not row.get("n_differs"):
        return ""
    return f"ranked on {_int(row.get('n_common'))} shared images (its mean: {_int(row.get('n'))})"


def _int(v) -> str:
    return "–" if v is None or v != v else f"{int(v)}"


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
    def fmt(g, p, v, t):
        twin = "" if t is None or t != t else f" / twin {t:+.3f}"
        return "–" if v is None or v != v else f"{g:+.3f} (p {_p(p)}, {v}){twin}"
    return pd.DataFrame({
        "n degenerate": board["n_degenerate"],
        "vs random map": [fmt(*r) for r in zip(board.gap_random, board.p_random, board.vs_random,
                                               board.twin_gap_random)],
        "vs centre map": [fmt(*r) for r in zip(board.gap_centre, board.p_centre, board.vs_centre,
                                               board.twin_gap_centre)],
        "warning": [guard_warning(r) for r in board.to_dict("records")],
        "n ranked": board["n_common"],
    }, index=board.index)
