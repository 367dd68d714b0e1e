"""``python -m engine report | table | figure``: the readings of a results database without the dashboard
(docs/dashboard.md, "Reports, tables and figures"), and the report every run writes next to its log."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..store.read import DEFAULT_DB

log = logging.getLogger("engine")


def write_run_report(db: Path, log_path: Path) -> Path | None:
    """The run's report (Markdown) next to its log; a failure to write it is logged, never fatal."""
    from ..dashboard.report import build_report
    out = log_path.with_suffix(".report.md")
    try:
        out.write_text(build_report(db), encoding="utf-8")
    except Exception as exc:  # the run's results are published already; the report is a reading of them
        log.error("could not write the run report %s: %s", out, exc)
        return None
    log.info("report written to %s", out)
    return out


def cmd_report(args) -> int:
    from ..dashboard.report import build_report
    try:
        text = build_report(Path(args.db), args.dataset, args.format)
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"report written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _dataset_id(db: Path, dataset: str) -> str | None:
    """The id of ``dataset`` (a name or an id) in ``db``; None, with the reason logged, when there is no
    results database there or no such dataset in it."""
    from ..dashboard import queries
    if not queries.database_exists(db):
        log.error("%s: no results database here", db)
        return None
    ds = queries.datasets(db)
    hit = ds[(ds.name == dataset) | (ds.dataset_id == dataset)].sort_values("dataset_id")
    if hit.empty:
        log.error("%s: no dataset %r", db, dataset)
        return None
    return str(hit.dataset_id.iloc[-1])


def cmd_table(args) -> int:
    from ..dashboard import queries
    from ..dashboard.export import paper_table, to_csv, to_latex
    db = Path(args.db)
    dataset_id = _dataset_id(db, args.dataset)
    if dataset_id is None:
        return 2
    board = queries.leaderboard(db, dataset_id, args.metric, args.region)
    if board.empty:
        log.error("%s: no scores of %s on region %s in dataset %s", db, args.metric, args.region, args.dataset)
        return 2
    table = paper_table(board)
    data = to_csv(table) if args.format == "csv" else to_latex(
        table, args.metric, args.region, bool(board.higher_is_better.iloc[0])).encode("utf-8")
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"table written to {args.out}")
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


def cmd_figure(args) -> int:
    from ..dashboard import queries
    from ..dashboard.figure import figure_panels, method_titles, render_png, render_svg
    from ..dashboard.images import UnsafePath
    db = Path(args.db)
    dataset_id = _dataset_id(db, args.dataset)
    if dataset_id is None:
        return 2
    methods = [(m, "{}") for m in args.methods.split(",") if m]
    ids = [i for i in (args.images or "").split(",") if i]
    if args.both_classes:
        return _figure_both_classes(args, db, dataset_id, methods, ids)
    if not ids:
        g = queries.gallery(db, dataset_id, args.model, methods[0][0], limit=args.n, method_params=methods[0][1])
        ids = list(g.image_id)
    try:
        panels = figure_panels(db, dataset_id, args.model, ids, methods, args.metric, args.region)
    except (UnsafePath, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    titles = method_titles(methods)
    out = Path(args.out)
    out.with_suffix(".png").write_bytes(render_png(panels, titles, args.alpha, args.cmap))
    out.with_suffix(".svg").write_text(render_svg(panels, titles, args.alpha, args.cmap), encoding="utf-8")
    print(f"figure written to {out.with_suffix('.png')} and {out.with_suffix('.svg')} "
          f"({len(panels)} images x {len(titles)} methods)")
    return 0


def _figure_both_classes(args, db: Path, dataset_id: str, methods: list, ids: list[str]) -> int:
    """``figure --both-classes``: misclassified images, the predicted and the true class's map per method."""
    from ..dashboard.classes import both_class_panels
    from ..dashboard.figure import render_png, render_svg
    from ..dashboard.images import UnsafePath
    try:
        panels, titles = both_class_panels(db, dataset_id, args.model, methods, args.metric, args.region,
                                           ids or None, args.n)
    except (UnsafePath, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    out = Path(args.out)
    out.with_suffix(".png").write_bytes(render_png(panels, titles, args.alpha, args.cmap))
    out.with_suffix(".svg").write_text(render_svg(panels, titles, args.alpha, args.cmap), encoding="utf-8")
    print(f"figure written to {out.with_suffix('.png')} and {out.with_suffix('.svg')} "
          f"({len(panels)} misclassified images x {len(methods)} methods x predicted / true class)")
    return 0


def add_reading_parsers(sub) -> None:
    """The ``report``, ``table`` and ``figure`` subcommands."""

    rp = sub.add_parser("report", help="a report of the database: model quality, leaderboards with both "
                        "baselines, sanity checks, failures, and every guard's flag")
    rp.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    rp.add_argument("--dataset", default=None, help="one dataset (name or id); default: all")
    rp.add_argument("--format", choices=["md", "html"], default="md")
    rp.add_argument("--out", default=None, help="write here instead of standard output")
    rp.set_defaults(fn=cmd_report)

    t = sub.add_parser("table", help="the leaderboard of one metric and region as CSV or LaTeX (booktabs)")
    t.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    t.add_argument("--dataset", required=True, help="dataset name or id")
    t.add_argument("--metric", default="pointing_game")
    t.add_argument("--region", default="mask")
    t.add_argument("--format", choices=["csv", "latex"], default="latex")
    t.add_argument("--out", default=None, help="write here instead of standard output")
    t.set_defaults(fn=cmd_table)

    f = sub.add_parser("figure", help="N images x M methods (image, outline, heatmap, score) as PNG and SVG")
    f.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    f.add_argument("--dataset", required=True, help="dataset name or id")
    f.add_argument("--model", required=True, help="model id")
    f.add_argument("--methods", required=True, help="comma-separated method names (default parameters)")
    f.add_argument("--images", default=None, help="comma-separated image ids (default: the first --n)")
    f.add_argument("--n", type=int, default=4, help="images when --images is not given (default %(default)s)")
    f.add_argument("--metric", default="pointing_game", help="score shown under each map")
    f.add_argument("--region", default="mask", help="region of that score ('none' for faithfulness)")
    f.add_argument("--cmap", default="inferno", choices=["inferno", "viridis", "gray"])
    f.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity")
    f.add_argument("--both-classes", action="store_true",
                   help="predicted vs true class: misclassified images, each method's map for the predicted and "
                        "for the true class side by side (both class names in full above each row)")
    f.add_argument("--out", default="figure", help="output stem: writes STEM.png and STEM.svg")
    f.set_defaults(fn=cmd_figure)
