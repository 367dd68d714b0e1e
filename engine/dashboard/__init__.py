"""The dashboard's read model: parameterised queries (:class:`Db`, typed and cached), the tables behind
the pages (pure functions), image and region reload for display, widgets and rendering.  Pages import
only this package (the names below); nothing else under ``engine/`` imports streamlit.

The streamlit-bound names (:class:`Db`, :func:`db_state`, the widgets) load on first use, so the command
line, which prints tables through :mod:`.queries`, never imports streamlit.
"""
from __future__ import annotations

import importlib

from ..common.labels import method_label
from .compare import depth_rows, strategy_dataset, strategy_means, strategy_models
from .export import paper_table, to_csv, to_latex
from .gallery import card_choice, card_score
from .guards import NEAR_CHANCE, headlines, with_guards
from .images import UnsafePath, load_row_sample
from .labels import model_labels
from .leaderboard import GROUPS as LEADERBOARD_GROUPS
from .leaderboard import group_column as leaderboard_group_column
from .leaderboard import higher_is_better as leaderboard_higher_is_better
from .leaderboard import leaderboard_table
from .live import database_message, live_run, live_view
from .overview import merge_coinciding
from .queries import GALLERY_SORTS, OUTCOMES, labelled, map_array
from .queries_compare import CONFOUNDER_METRICS, best_model, per_method_spearman
from .regions import DatasetRegions, default_region, ordered_regions, region_pairs, spec_regions
from .safe import csv_bytes, csv_safe, md, plotly_frame, plotly_text
from .viz import COLORMAPS, legend, render_sample

_STREAMLIT_BOUND = {"Db": "cache", "db_state": "cache", **{n: "widgets" for n in (
    "live_panel", "no_database", "open_page", "requested_page", "show_table", "url_page", "url_range", "url_selectbox",
    "url_slider")}, "near_chance_warning": "guard_widgets", "figure_downloads": "guard_widgets",
    "both_classes_block": "class_widgets"}

__all__ = [
    "COLORMAPS", "CONFOUNDER_METRICS", "DatasetRegions", "GALLERY_SORTS", "LEADERBOARD_GROUPS", "NEAR_CHANCE",
    "OUTCOMES", "UnsafePath", "best_model", "card_choice", "card_score", "csv_bytes", "csv_safe", "database_message",
    "default_region", "depth_rows", "headlines", "labelled", "leaderboard_group_column", "leaderboard_higher_is_better",
    "leaderboard_table", "legend", "live_run", "live_view", "load_row_sample", "map_array", "md", "merge_coinciding",
    "method_label", "model_labels", "ordered_regions", "paper_table", "per_method_spearman", "plotly_frame",
    "plotly_text", "region_pairs", "render_sample", "spec_regions", "strategy_dataset", "strategy_means",
    "to_csv", "to_latex", "with_guards",
    "strategy_models", *_STREAMLIT_BOUND,
]


def __getattr__(name: str):
    if name in _STREAMLIT_BOUND:
        return getattr(importlib.import_module(f".{_STREAMLIT_BOUND[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
