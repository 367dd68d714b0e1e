"""``python -m engine report | table | figure``: the readings of a results database without the dashboard
(docs/dashboard.md, "Reports, tables and figures"), and the report every run writes next to its log."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..store.read import DEFAULT_DB
from .errors import fail

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


def _one_line(fn):
    """A reading command: a name that is not in the database (or a file it cannot write) is one line and
    exit 2; anything else one line and exit 1 (the traceback with -v). Never a traceback otherwise."""
    def run(args) -> int:
        from ..dashboard.images import UnsafePath
        from .names import UnknownName
        try:
            return fn(args)
        except (UnknownName, UnsafePath, OSError) as exc:
            fail(exc)
            return 2
        except Exception as exc:
            log.debug("%s failed", fn.__name__, exc_info=True)
            fail(f"{type(exc).__name__}: {exc}")
            return 1
    run.__name__ = fn.__name__
    return run


def _write(out: str | None, data: bytes, what: str) -> None:
    if out:
        Path(out).write_bytes(data)
        print(f"{what} written to {out}")
    else:
        sys.stdout.write(data.decode("utf-8"))


@_one_line
def cmd_table(args) -> int:
    from ..dashboard import queries
    from ..dashboard.export import paper_table, to_csv, to_latex
    from .names import resolve_dataset, resolve_metric, resolve_region
    scope = resolve_dataset(Path(args.db), args.dataset)
    metric = resolve_metric(scope, args.metric)
    region = resolve_region(scope, metric, args.region)
    board = queries.leaderboard(scope.db, scope.dataset_id, metric, region)
    table = paper_table(board)
    data = to_csv(table) if args.format == "csv" else to_latex(
        table, metric, region, bool(board.higher_is_better.iloc[0])).encode("utf-8")
    _write(args.out, data, "table")
    return 0


@_one_line
def cmd_figure(args) -> int:
    from ..dashboard import queries
    from ..dashboard.figure import figure_panels, method_titles
    from .names import UnknownName, resolve_dataset, resolve_methods, resolve_metric, resolve_model, resolve_region
    scope = resolve_dataset(Path(args.db), args.dataset)
    model = resolve_model(scope, args.model)
    methods = resolve_methods(scope, model, args.methods)
    metric = resolve_metric(scope, args.metric, model)
    region = resolve_region(scope, metric, args.region, model)
    ids = [i for i in (args.images or "").split(",") if i]
    if args.both_classes:
        return _figure_both_classes(args, scope.db, scope.dataset_id, model, methods, metric, region, ids)
    if not ids:
        g = queries.gallery(scope.db, scope.dataset_id, model, methods[0][0], limit=args.n,
                            method_params=methods[0][1])
        ids = list(g.image_id)
        if not ids:
            raise UnknownName(f"no maps of {method_titles(methods[:1])[0]} for model {model} in dataset "
                              f"{scope.dataset}")
    try:
        panels = figure_panels(scope.db, scope.dataset_id, model, ids, methods, metric, region)
    except ValueError as exc:  # an image id not in the dataset; an unsafe path or a bad file: as they are
        if not str(exc).startswith("no image "):
            raise
        raise UnknownName(f"{exc} (--images takes the ids the Gallery shows)") from None
    titles = method_titles(methods)
    _write_figure(args, panels, titles, f"{len(panels)} images x {len(titles)} methods; {metric} on {region}")
    return 0


def _write_figure(args, panels: list, titles: list[str], what: str) -> None:
    """``--out``'s PNG and SVG of ``panels``, and the line that says where they went."""
    from ..dashboard.figure import render_png, render_svg
    out = Path(args.out)
    out.with_suffix(".png").write_bytes(render_png(panels, titles, args.alpha, args.cmap))
    out.with_suffix(".svg").write_text(render_svg(panels, titles, args.alpha, args.cmap), encoding="utf-8")
    print(f"figure written to {out.with_suffix('.png')} and {out.with_suffix('.svg')} ({what})")


def _figure_both_classes(args, db: Path, dataset_id: str, model: str, methods: list, metric: str, region: str,
                         ids: list[str]) -> int:
    """``figure --both-classes``: misclassified images, the predicted and the true class's map per method."""
    from ..dashboard.classes import both_class_panels
    from ..dashboard.images import UnsafePath
    try:
        panels, titles = both_class_panels(db, dataset_id, model, methods, metric, region,
                                           ids or None, args.n)
    except (UnsafePath, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    _write_figure(args, panels, titles, f"{len(panels)} misclassified images x {len(methods)} methods x "
                                        f"predicted / true class")
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
    t.add_argument("--region", default=None, help="region of the scores (default: the dataset's first mask "
                   "region, as on the dashboard)")
    t.add_argument("--format", choices=["csv", "latex"], default="latex")
    t.add_argument("--out", default=None, help="write here instead of standard output")
    t.set_defaults(fn=cmd_table)

    f = sub.add_parser("figure", help="N images x M methods (image, outline, heatmap, score) as PNG and SVG")
    f.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    f.add_argument("--dataset", required=True, help="dataset name or id")
    f.add_argument("--model", required=True, help="model: the dashboard's label (vit_demo:trained), "
                   "name:fine_tuning, or the full id")
    f.add_argument("--methods", required=True, help="comma-separated methods: a name (its default parameters) "
                   "or name(key=value, ...) for a variant, e.g. attention,integrated_gradients(n_steps=16)")
    f.add_argument("--images", default=None, help="comma-separated image ids (default: the first --n)")
    f.add_argument("--n", type=int, default=4, help="images when --images is not given (default %(default)s)")
    f.add_argument("--metric", default="pointing_game", help="score shown under each map")
    f.add_argument("--region", default=None, help="region of that score (default: the dataset's first mask "
                   "region; 'none' for faithfulness)")
    f.add_argument("--cmap", default="inferno", choices=["inferno", "viridis", "gray"])
    f.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity")
    f.add_argument("--both-classes", action="store_true",
                   help="predicted vs true class: misclassified images, each method's map for the predicted and "
                        "for the true class side by side (both class names in full above each row)")
    f.add_argument("--out", default="figure", help="output stem: writes STEM.png and STEM.svg")
    f.set_defaults(fn=cmd_figure)
