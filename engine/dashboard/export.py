"""The leaderboard of one (dataset, metric, region) as a table for a paper: CSV and LaTeX (booktabs).

Both are pure functions of a :func:`engine.dashboard.queries.leaderboard` frame, so the same database
gives the same bytes.  LaTeX: methods x models, each cell ``mean [low, high]`` (95 % bootstrap CI), the
best method of each model in bold, and marks from the paired tests against the baseline maps (Holm):
``\\textsuperscript{r}`` beats the random map, ``\\textsuperscript{c}`` beats the centre map; a model whose
balanced accuracy is near chance is marked with a dagger in its column head.
"""
from __future__ import annotations

import io

import pandas as pd

from .guards import NEAR_CHANCE, with_guards
from .labels import model_labels
from .leaderboard import rank_within
from .safe import csv_safe

CSV_COLUMNS = ["model_id", "method", "rank", "mean", "ci_low", "ci_high", "n", "n_undefined", "n_degenerate",
               "gap_random", "p_random", "vs_random", "gap_centre", "p_centre", "vs_centre", "substrate", "warning",
               "near_chance"]


def paper_table(board: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, method) with rank (within the model, baselines not ranked) and every guard."""
    b = with_guards(board)
    if b.empty:
        return pd.DataFrame(columns=CSV_COLUMNS)
    higher = bool(b.higher_is_better.iloc[0])
    b["rank"] = rank_within(b, "model_id", higher)
    b = b.assign(method=b["label"]).sort_values(["model_id", "baseline", "rank", "method"], na_position="last")
    return b[CSV_COLUMNS].reset_index(drop=True)


def to_csv(table: pd.DataFrame) -> bytes:
    """CSV bytes (UTF-8, ``\\n`` line ends, floats with 6 significant digits, formula-looking text neutralised)."""
    out = csv_safe(table)
    buf = io.StringIO()
    out.to_csv(buf, index=False, lineterminator="\n", float_format="%.6g")
    return buf.getvalue().encode("utf-8")


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def _cell(mean, lo, hi, digits: int) -> str:
    if mean is None or mean != mean:
        return "--"
    ci = "" if lo is None or lo != lo else f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{mean:.{digits}f}{ci}"


def to_latex(table: pd.DataFrame, metric: str, region: str, higher_is_better: bool, digits: int = 2) -> str:
    """A booktabs ``tabular`` (methods x models) from :func:`paper_table` rows, with a caption."""
    models = sorted(table.model_id.unique())
    real = table[~table.method.str.startswith("baseline_")]
    methods = sorted(real.method.unique()) + sorted(set(table.method) - set(real.method))
    best = {}
    for m in models:
        mine = real[(real.model_id == m) & real["mean"].notna()]
        if len(mine):
            v = mine["mean"].max() if higher_is_better else mine["mean"].min()
            best[m] = set(mine[mine["mean"] == v].method)
    flagged = set(table.loc[table.near_chance.astype(bool), "model_id"])
    labels = model_labels(models)  # the dashboard's names: no hash unless two models share a label
    head = " & ".join(tex_escape(labels[m]) + (r"$^\dagger$" if m in flagged else "") for m in models)
    lines = [r"\begin{tabular}{l" + "r" * len(models) + "}", r"\toprule", f"method & {head} \\\\", r"\midrule"]
    baseline_started = False
    for method in methods:
        if method.startswith("baseline_") and not baseline_started:
            lines.append(r"\midrule")
            baseline_started = True
        cells = []
        for m in models:
            row = table[(table.model_id == m) & (table.method == method)]
            if row.empty:
                cells.append("")
                continue
            r = row.iloc[0]
            text = _cell(r["mean"], r["ci_low"], r["ci_high"], digits)
            if method in best.get(m, ()):
                text = r"\textbf{" + text + "}"
            marks = ("r" if r["vs_random"] == "beats" else "") + ("c" if r["vs_centre"] == "beats" else "")
            cells.append(text + (r"\textsuperscript{" + marks + "}" if marks else ""))
        lines.append(f"{tex_escape(method)} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    where = "" if region in (None, "none") else f" on {tex_escape(region)}"
    note = (f"% {tex_escape(metric)}{where} ({'higher' if higher_is_better else 'lower'} is "
            f"better): mean over test images [95 % bootstrap CI]; bold = best method of the model; "
            f"r / c = beats the random / centre map (Wilcoxon signed-rank, Holm, p < 0.05)"
            + (f"; dagger = model {NEAR_CHANCE}" if flagged else ""))
    return note + "\n" + "\n".join(lines) + "\n"
