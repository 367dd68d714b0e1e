"""``python -m engine report``: what a reader needs without the dashboard, as Markdown or HTML.

Per dataset: the centre prior (share of regions covering the image centre); per model the quality with
CIs and the near-chance flag; the leaderboard of every (metric, region) with means, CIs, ranks, degenerate
maps, both-baseline verdicts, substrate warnings and a headline per model; the MPRT sanity verdicts; the
failures.  :func:`build_report` is a pure function of the database (no clock, no Streamlit): the same
database gives the same bytes.
"""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from ..common.verdicts import SURVIVES
from ..store.schema import SCHEMA_VERSION
from . import queries
from .guards import NEAR_CHANCE, centre_share, headlines, model_quality, with_guards
from .leaderboard import rank_within
from .queries import frame

FORMATS = ("md", "html")


def _num(v, digits: int = 3) -> str:
    return "–" if v is None or v != v else f"{v:.{digits}f}"


def _ci(mean, lo, hi, digits: int = 2) -> str:
    return f"{_num(mean, digits)} [{_num(lo, digits)}, {_num(hi, digits)}]"


def _datasets(path, dataset: str | None) -> pd.DataFrame:
    ds = queries.datasets(path)
    if dataset is not None:
        ds = ds[(ds.name == dataset) | (ds.dataset_id == dataset)]
    return ds.sort_values("dataset_id").reset_index(drop=True)


def _groups(path, dataset_id: str) -> pd.DataFrame:
    return frame(path, "SELECT DISTINCT metric, region FROM summary WHERE dataset_id = ? ORDER BY metric, region",
               [dataset_id])


def _sanity(path, dataset_id: str) -> pd.DataFrame:
    return frame(path, """
        WITH last AS (SELECT model_id, method, max(step) AS step FROM sanity WHERE dataset_id = ? GROUP BY ALL)
        SELECT s.model_id, s.method, count(*) AS images, avg(s.spearman) AS mean_spearman, avg(s.ssim) AS mean_ssim
        FROM sanity s JOIN last USING (model_id, method, step) WHERE s.dataset_id = ?
        GROUP BY ALL ORDER BY s.model_id, s.method""", [dataset_id, dataset_id])


def _failures(path, dataset_id: str) -> pd.DataFrame:
    return frame(path, """
        SELECT coalesce(model_id, '–') AS model_id, coalesce(method, '–') AS method, stage, reason, count(*) AS items
        FROM failures WHERE dataset_id = ? GROUP BY ALL ORDER BY items DESC, model_id, method, stage, reason""",
               [dataset_id])


def report_blocks(path, dataset: str | None = None) -> list[tuple]:
    """The report as blocks: ("h", level, text), ("p", text), ("table", DataFrame)."""
    path = Path(path)
    out: list[tuple] = [("h", 1, f"Results report: {path.name}")]
    runs = queries.runs(path, 1)
    if len(runs):
        r = runs.iloc[0]
        out.append(("p", f"Latest run {r.run_id} ({r.status}), started {r.started_at}; wall time "
                         f"{_num(r.seconds, 0)} s, summed job time {_num(r.job_seconds, 0)} s."))
    ds = _datasets(path, dataset)
    if ds.empty:
        out.append(("p", "No dataset" + (f" named {dataset!r}" if dataset else "") + " in this database."))
        return out
    for d in ds.itertuples():
        out += _dataset_blocks(path, d)
    return out


def _dataset_blocks(path, d) -> list[tuple]:
    out: list[tuple] = [("h", 2, f"Dataset {d.name} ({d.dataset_id})")]
    cs = centre_share(path, d.dataset_id)
    if len(cs):
        parts = [f"{r.region}: {r.covers_centre:.0%} of {r.images}" for r in cs.itertuples()]
        out.append(("p", "Regions covering the image centre (the centre map's prior): " + "; ".join(parts) + "."))
    q = model_quality(path, d.dataset_id)
    out.append(("h", 3, "Models"))
    if q.empty:
        out.append(("p", "No model quality recorded (no test predictions, or a database older than schema 5)."))
    else:
        out.append(("table", pd.DataFrame({
            "model": q.model_id, "init": q["init"].fillna("–"), "n": q.n,
            "accuracy [95 % CI]": [_ci(a, lo, hi) for a, lo, hi in zip(q.accuracy, q.accuracy_ci_low,
                                                                        q.accuracy_ci_high)],
            "majority class": [_num(v, 2) for v in q.chance_majority],
            "balanced accuracy [95 % CI]": [_ci(a, lo, hi) for a, lo, hi in zip(
                q.balanced_accuracy, q.balanced_accuracy_ci_low, q.balanced_accuracy_ci_high)],
            "chance (1/K)": [_num(v, 2) for v in q.chance_uniform],
            "vs random-weights twin": ["–" if t is None or t != t else f"{_ci(x, lo, hi)} ({t})" for t, x, lo, hi in
                                       zip(q.twin_model_id, q.twin_diff, q.twin_diff_ci_low, q.twin_diff_ci_high)],
            "flag": [NEAR_CHANCE if f else "" for f in q.near_chance.fillna(False)]})))
    for g in _groups(path, d.dataset_id).itertuples():
        out += _board_blocks(path, d.dataset_id, g.metric, g.region)
    sanity = _sanity(path, d.dataset_id)
    out.append(("h", 3, "Sanity check (MPRT, after full randomisation)"))
    if sanity.empty:
        out.append(("p", "Not run."))
    else:
        out.append(("table", sanity.assign(
            mean_spearman=[_num(v) for v in sanity.mean_spearman], mean_ssim=[_num(v) for v in sanity.mean_ssim],
            verdict=["FAILS: the map survives randomisation (it ignores the model)" if s == s and s > SURVIVES else
                     "passes" if s == s else "undefined (constant maps)" for s in sanity.mean_spearman])))
    fails = _failures(path, d.dataset_id)
    out.append(("h", 3, "Failures"))
    out.append(("table", fails) if len(fails) else ("p", "None recorded."))
    return out


def _board_blocks(path, dataset_id: str, metric: str, region: str) -> list[tuple]:
    full = queries.leaderboard(path, dataset_id, metric, region)
    out: list[tuple] = []
    for params, board in full.groupby("metric_params", sort=True):  # one leaderboard per parameter set
        out += _one_board(with_guards(board), metric, region, params)
    return out


def _one_board(board: pd.DataFrame, metric: str, region: str, params: str) -> list[tuple]:
    higher = bool(board.higher_is_better.iloc[0])
    sub = board.substrate.dropna()
    what = (f"{metric} on {region}" + (f", substrate {sub.iloc[0]}" if len(sub) else "")
            + (f" {params}" if params not in ("{}", None) else ""))
    out: list[tuple] = [("h", 3, f"{what} ({'higher' if higher else 'lower'} is better)")]
    heads = headlines(board)
    for model_id, g in board.groupby("model_id", sort=True):
        g = g.assign(rank=rank_within(g, "model_id", higher))
        g = g.sort_values(["baseline", "rank", "label"])
        flag = f" — **{NEAR_CHANCE}**" if bool(g.near_chance.iloc[0]) else ""
        out.append(("p", f"**{model_id}**{flag}: {heads[model_id]}."))
        out.append(("table", pd.DataFrame({
            "rank": ["baseline" if b else f"{r:.0f}" if r == r else "–" for b, r in zip(g["baseline"], g["rank"])],
            "method": g.label, "mean [95 % CI]": [_ci(m, lo, hi, 3) for m, lo, hi in zip(g["mean"], g.ci_low,
                                                                                          g.ci_high)],
            "n": g.n, "n degenerate": g.n_degenerate,
            "vs random map": [_verdict(x, p, v) for x, p, v in zip(g.gap_random, g.p_random, g.vs_random)],
            "vs centre map": [_verdict(x, p, v) for x, p, v in zip(g.gap_centre, g.p_centre, g.vs_centre)],
            "warning": g.warning})))
    return out


def _verdict(gap, p, v) -> str:
    return "–" if v is None or v != v else f"{gap:+.3f}, p = {p:.2g} ({v})"


# -- rendering ------------------------------------------------------------------------------------

def _md_cell(v) -> str:
    text = "–" if v is None or (isinstance(v, float) and v != v) else str(v)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _markdown(blocks) -> str:
    lines = []
    for b in blocks:
        if b[0] == "h":
            lines += [f"{'#' * b[1]} {_md_cell(b[2])}", ""]
        elif b[0] == "p":
            lines += [b[1].replace("\n", " "), ""]
        else:
            df = b[1]
            lines.append("| " + " | ".join(_md_cell(c) for c in df.columns) + " |")
            lines.append("|" + "---|" * len(df.columns))
            lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _html(blocks) -> str:
    def esc(v):
        return html.escape("–" if v is None or (isinstance(v, float) and v != v) else str(v))
    body = []
    for b in blocks:
        if b[0] == "h":
            body.append(f"<h{b[1]}>{esc(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            parts = esc(b[1]).split("**")  # the only markup paragraphs use: **bold**
            body.append("<p>" + "".join(f"<strong>{t}</strong>" if k % 2 else t for k, t in enumerate(parts)) + "</p>")
        else:
            df = b[1]
            head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
            rows = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
                           for row in df.itertuples(index=False))
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    style = ("body{font-family:sans-serif;max-width:80em;margin:auto}table{border-collapse:collapse;margin:0.5em 0}"
             "td,th{border:1px solid #999;padding:2px 6px;font-size:90%}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Results report</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def build_report(path, dataset: str | None = None, fmt: str = "md") -> str:
    """The report of the database at ``path`` (one dataset by name or id, or all) as Markdown or HTML."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {list(FORMATS)}")
    if not queries.database_exists(path):
        raise FileNotFoundError(f"{path}: no results database here")
    found = queries.schema_version(path)
    if found < SCHEMA_VERSION:
        raise ValueError(f"{path}: written with results schema version {found}; the report needs version "
                         f"{SCHEMA_VERSION} (re-run the experiment or the demo to rebuild it)")
    blocks = report_blocks(path, dataset)
    return _markdown(blocks) if fmt == "md" else _html(blocks)
