"""The Leaderboard page's table, as pure functions of the rows :func:`.queries.leaderboard_view` returns.

The rank lives here and only here: the rank of each method inside its group (a model, a pretraining
strategy or an architecture), 1 = best, ``method="min"`` on ties, chance baselines (``baseline_*``) not
ranked.  The SQL returns the rows unranked.  The p-value "vs best" is looked up in the ``pairwise``
table (Wilcoxon signed-rank, Holm-adjusted at ingest), never computed here.
"""
from __future__ import annotations

import pandas as pd

from ..common.labels import method_label
from .guards import guard_columns, with_guards

# group key -> its name on the page
GROUPS = {"model": "model", "strategy": "pretraining strategy", "arch": "architecture"}
RANDOM_BASELINE = "baseline_random"
# the columns a reader needs first (rank, score with CI, significance, the baseline verdicts, warnings), so
# that they are on screen at 1,400 px; counts and descriptors after them
BY_MODEL_COLUMNS = ["model_id", "rank", "label", "mean", "ci_low", "ci_high", "p vs best (Holm)", "signif",
                    "vs random map", "vs centre map", "warning", "n", "n degenerate", "n_undefined", "vs random",
                    "strategy", "arch", "baseline"]


def group_column(group_key: str) -> str:
    """The column a group key groups by (``model`` -> ``model_id``)."""
    if group_key not in GROUPS:
        raise ValueError(f"group {group_key!r} is not one of {sorted(GROUPS)}")
    return "model_id" if group_key == "model" else group_key


def higher_is_better(board: pd.DataFrame) -> bool:
    """The metric's direction from the leaderboard rows (higher when there are none)."""
    return bool(board["higher_is_better"].iloc[0]) if len(board) else True


def prepare(board: pd.DataFrame) -> pd.DataFrame:
    """A copy of the leaderboard rows with the method's display ``label``, ``strategy`` (else the init, else
    'unknown'), ``arch`` (else the model name, else 'unknown') and the ``baseline`` flag."""
    board = board.copy()  # a cached frame stays as it was
    board["label"] = [method_label(m, p) for m, p in zip(board["method"], board["method_params"])]
    board["strategy"] = board["strategy"].fillna(board["init"]).fillna("unknown")
    board["arch"] = board["arch"].fillna(board["model"]).fillna("unknown")
    if "fine_tuning" in board:  # an architecture's group never mixes fine-tuned and untrained models
        board["arch"] = board["arch"] + " · " + board["fine_tuning"].fillna("unknown")
    board["baseline"] = board["method"].str.startswith("baseline_")
    return board


def rank_within(df: pd.DataFrame, by: str, higher: bool, value: str = "mean") -> pd.Series:
    """Rank of each row's ``value`` inside its ``by`` group (1 = best, ties share the lowest rank); rows
    flagged ``baseline`` get NaN (not ranked) and do not push the others down."""
    real = df[~df["baseline"]]
    return real.groupby(by)[value].rank(ascending=not higher, method="min").reindex(df.index)


def p_vs_best(board: pd.DataFrame, pairs: pd.DataFrame) -> list[float | None]:
    """Per row of a ranked board (``model_id``, ``label``, ``rank``, ``baseline``): the Holm-adjusted p of
    its method against its model's rank-1 method, looked up in ``pairs`` (either order of the pair).
    None for the best method(s), baselines and models without a ranked method; NaN where no test was
    stored (or the stored p is undefined)."""
    best = board[board["rank"] == 1].groupby("model_id")["label"].agg(list)
    out: list[float | None] = []
    for row in board.itertuples():
        leaders = best.get(row.model_id, [])
        if row.baseline or not leaders or row.label in leaders:
            out.append(None)
            continue
        b = leaders[0]
        hit = pairs[(pairs.model_id == row.model_id) & (((pairs.method_a == b) & (pairs.method_b == row.label)) |
                                                         ((pairs.method_b == b) & (pairs.method_a == row.label)))]
        out.append(float("nan") if hit.empty else float(hit.p_holm.iloc[0]))
    return out


def p_text(p: float | None, baseline: bool) -> str:
    """The "p vs best" cell: empty for a baseline, 'best', 'n/a' (no test or undefined) or the p."""
    return "" if baseline else "best" if p is None else "n/a" if p != p else f"{p:.2g}"


def stars(p: float | None) -> str:
    """Significance marks: *** p < 0.001, ** < 0.01, * < 0.05, else n.s.; empty without a p."""
    return "" if p is None or p != p else "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "n.s."


def random_gap(df: pd.DataFrame, by: str) -> pd.Series:
    """Mean minus the random-map baseline's mean of the same group (NaN where no baseline was run)."""
    base = df[df.method == RANDOM_BASELINE].groupby(by)["mean"].mean()
    return df["mean"] - df[by].map(base).astype(float)  # float also when df is empty


def by_model(board: pd.DataFrame, pairs: pd.DataFrame, higher: bool) -> pd.DataFrame:
    """One row per (model, method): rank within the model, random gap, p vs the model's best, marks, and the
    guards (:mod:`.guards`: n degenerate, paired gaps to the random and centre maps, substrate warning)."""
    guarded = with_guards(board)  # its label names the substrate when a board mixes two
    board = board.assign(label=guarded["label"]).join(guard_columns(guarded))
    board = board.assign(rank=rank_within(board, "model_id", higher))
    p = p_vs_best(board, pairs)
    board["p vs best (Holm)"] = [p_text(v, b) for v, b in zip(p, board["baseline"])]
    board["signif"] = [stars(v) for v in p]
    board["vs random"] = random_gap(board, "model_id")
    return board[BY_MODEL_COLUMNS]


def by_group(board: pd.DataFrame, gcol: str, higher: bool) -> pd.DataFrame:
    """One row per (group, method): mean of the group's model means, lowest and highest model mean, models,
    images summed (n), rank within the group and random gap."""
    agg = board.groupby([gcol, "label", "method"], sort=True).agg(
        models=("model_id", "nunique"), mean=("mean", "mean"), min_model_mean=("mean", "min"),
        max_model_mean=("mean", "max"), n=("n", "sum"), baseline=("baseline", "first")).reset_index()
    agg["rank"] = rank_within(agg, gcol, higher)
    agg["vs random"] = random_gap(agg, gcol)
    return agg[[gcol, "rank", "label", "mean", "min_model_mean", "max_model_mean", "models", "n", "vs random",
                "baseline"]]


def leaderboard_table(board: pd.DataFrame, pairs: pd.DataFrame, group_key: str = "model") -> pd.DataFrame:
    """The page's detail table from :func:`.queries.leaderboard_view`'s (board, pairs): per model
    (:func:`by_model`) or per strategy / architecture (:func:`by_group`), the method column holding the
    display label, sorted by group, baselines last, rank; floats but the rank rounded to 3 decimals."""
    gcol = group_column(group_key)
    board, higher = prepare(board), higher_is_better(board)
    shown = by_model(board, pairs, higher) if group_key == "model" else by_group(board, gcol, higher)
    shown = shown.rename(columns={"label": "method"}).sort_values([gcol, "baseline", "rank"]).reset_index(drop=True)
    return shown.round({c: 3 for c in shown.columns if shown[c].dtype.kind == "f" and c != "rank"})
