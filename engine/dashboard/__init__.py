"""The dashboard's read model: parameterised queries (:class:`Db`, typed and cached), the tables behind
the pages (pure functions), image and region reload for display, widgets and rendering.  Pages import
only this package (the names below); nothing else under ``engine/`` imports streamlit.

The streamlit-bound names (:class:`Db`, :func:`db_state`, the widgets) load on first use, so the command
line, which prints tables through :mod:`.queries`, never imports streamlit.
"""
from __future__ import annotations

import importlib

from ..common.labels import method_label
from ..store.check import DamagedDatabase
from .charts import bar as bar_chart
from .charts import line as line_chart
from .charts import scatter as scatter_chart
from .charts import tidy_facets, with_auc
from .compare import depth_rows, mprt_verdicts, strategy_dataset, strategy_means, strategy_models
from .export import paper_table, to_csv, to_latex
from .focus import chance_lines, focus_model, method_order, model_order, untrained_models
from .gallery import card_choice, card_score, confusion_frame, degenerate_note, score_choice, split_choice
from .guards import NEAR_CHANCE, headlines, with_guards
from .hints import start_help
from .images import UnsafePath, load_row_sample
from .labels import dataset_labels, model_labels
from .leaderboard import GROUPS as LEADERBOARD_GROUPS
from .leaderboard import group_column as leaderboard_group_column
from .leaderboard import higher_is_better as leaderboard_higher_is_better
from .leaderboard import leaderboard_table
from .live import database_message, live_run, live_view, pending
from .overview import JOB_TIME, RUN_TIMES, merge_coinciding
from .queries import GALLERY_SORTS, OUTCOMES, SURVIVES, labelled, map_array
from .queries_compare import CONFOUNDER_METRICS, best_model, per_method_spearman
from .regions import DatasetRegions, default_region, ordered_regions, region_pairs, stored_regions
from .safe import csv_bytes, csv_safe, md, plotly_frame, plotly_text
from .viz import COLORMAPS, legend, render_sample

_STREAMLIT_BOUND = {"Db": "cache", "db_state": "cache", **{n: "widgets" for n in (
    "live_panel", "no_database", "pick_dataset", "picker",
    "open_page", "requested_page", "show_table", "url_page", "url_range", "url_selectbox",
    "url_slider", "will_compute", "cached_overlay")}, "near_chance_warning": "guard_widgets",
    "figure_downloads": "guard_widgets", "shortcut_notes": "guard_widgets",
    "both_classes_block": "class_widgets"}

__all__ = [
    "bar_chart", "line_chart", "scatter_chart", "tidy_facets", "with_auc", "chance_lines", "pending",
    "confusion_frame", "degenerate_note", "score_choice", "split_choice", "dataset_labels",
    "focus_model", "method_order", "model_order", "untrained_models", "mprt_verdicts", "SURVIVES",
    "JOB_TIME", "RUN_TIMES",
    "COLORMAPS", "CONFOUNDER_METRICS", "DamagedDatabase", "DatasetRegions", "GALLERY_SORTS", "LEADERBOARD_GROUPS",
    "NEAR_CHANCE",
    "OUTCOMES", "UnsafePath", "best_model", "card_choice", "card_score", "csv_bytes", "csv_safe", "database_message",
    "default_region", "depth_rows", "headlines", "labelled", "leaderboard_group_column", "leaderboard_higher_is_better",
    "leaderboard_table", "legend", "live_run", "live_view", "load_row_sample", "map_array", "md", "merge_coinciding",
    "method_label", "model_labels", "ordered_regions", "paper_table", "per_method_spearman", "plotly_frame",
    "plotly_text", "region_pairs", "render_sample", "stored_regions", "strategy_dataset", "strategy_means",
    "start_help", "to_csv", "to_latex", "with_guards",
    "strategy_models", *_STREAMLIT_BOUND,
]


def __getattr__(name: str):
    if name in _STREAMLIT_BOUND:
        return getattr(importlib.import_module(f".{_STREAMLIT_BOUND[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
