"""The leaderboard of one (dataset, metric, region) as a table for a paper: CSV and LaTeX (booktabs).

Both are pure functions of a :func:`engine.dashboard.queries.leaderboard` frame, so the same database
gives the same bytes.  LaTeX: methods x models, each cell ``mean [low, high]`` (95 % bootstrap CI), the
best method of each model in bold, and marks from the paired tests against the baseline maps (Holm):
``\\textsuperscript{r}`` beats the random map, ``\\textsuperscript{c}`` beats the centre map,
``\\textsuperscript{d}`` degenerate maps on more than ``MAX_DEGENERATE_SHARE`` of its images; a model whose
balanced accuracy is near chance is marked with a dagger in its column head.  The rank and the bold mark use
the mean over the images every ranked method of the model scored (its n in the column head); a cell whose
own mean is over a different n carries a double dagger.
"""
from __future__ import annotations

import io

import pandas as pd

from ..common.labels import MAX_DEGENERATE_SHARE
from .guards import NEAR_CHANCE, with_guards
from .labels import model_labels
from .leaderboard import rank_within
from .safe import csv_safe

CSV_COLUMNS = ["model_id", "method", "rank", "mean", "ci_low", "ci_high", "n", "n_undefined", "n_degenerate",
               "n_common", "mean_common", "degenerate_share", "mostly_degenerate",
               "gap_random", "p_random", "vs_random", "gap_centre", "p_centre", "vs_centre", "substrate", "warning",
               "near_chance"]


def paper_table(board: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, method) with rank (within the model, baselines not ranked) and every guard."""
    b = with_guards(board)
    if b.empty:
        return pd.DataFrame(columns=CSV_COLUMNS)
    higher = bool(b.higher_is_better.iloc[0])
    b["rank"] = rank_within(b, "model_id", higher, value="rank_mean")
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
    best = {m: set(real[(real.model_id == m) & (real["rank"] == 1)].method) for m in models}
    flagged = set(table.loc[table.near_chance.astype(bool), "model_id"])
    labels = model_labels(models)  # the dashboard's names: no hash unless two models share a label
    head = " & ".join(tex_escape(labels[m]) + (r"$^\dagger$" if m in flagged else "") + _shared_n(table, m)
                      for m in models)
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
            marks = (("r" if r["vs_random"] == "beats" else "") + ("c" if r["vs_centre"] == "beats" else "")
                     + ("d" if r["mostly_degenerate"] else ""))
            differs = r"$^\ddagger$" if _n_differs(r) else ""
            cells.append(text + (r"\textsuperscript{" + marks + "}" if marks else "") + differs)
        lines.append(f"{tex_escape(method)} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    where = "" if region in (None, "none") else f" on {tex_escape(region)}"
    note = (f"% {tex_escape(metric)}{where} ({'higher' if higher_is_better else 'lower'} is "
            f"better): mean over test images [95 % bootstrap CI]; bold = best method of the model, ranked on the "
            f"n images every method of the model scored (column head); r / c = beats the random / centre map "
            f"(Wilcoxon signed-rank on those images, Holm, p < 0.05); d = degenerate maps on more than "
            f"{MAX_DEGENERATE_SHARE:.0%} of its images; double dagger = its mean is over a different n"
            + (f"; dagger = model {NEAR_CHANCE}" if flagged else ""))
    return note + "\n" + "\n".join(lines) + "\n"


def _n_differs(r) -> bool:
    n, shared = r.get("n"), r.get("n_common")
    return shared is not None and shared == shared and n is not None and n == n and int(n) != int(shared)


def _shared_n(table: pd.DataFrame, model: str) -> str:
    """`` (n = 14)``: the shared images the model's methods are ranked on; empty where not stored."""
    shared = table.loc[table.model_id == model, "n_common"].dropna()
    return f" (n = {int(shared.iloc[0])})" if len(shared) and shared.nunique() == 1 else ""
