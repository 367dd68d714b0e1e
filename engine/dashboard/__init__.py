"""The dashboard's read model: parameterised queries, their Streamlit cache, image and region reload for
display, widgets and rendering.  Pages import only this package (the names below); nothing else under
``engine/`` imports streamlit."""
from __future__ import annotations

from ..metrics.summaries import method_label
from .cache import Db, db_state
from .images import UnsafePath, load_row_sample
from .queries import GALLERY_SORTS, OUTCOMES, labelled, map_array
from .queries_compare import CONFOUNDER_METRICS, best_model, per_method_spearman
from .viz import COLORMAPS, render_sample
from .widgets import (no_database, open_page, requested_page, show_table, url_page, url_range, url_selectbox,
                      url_slider)

__all__ = ["COLORMAPS", "CONFOUNDER_METRICS", "Db", "GALLERY_SORTS", "OUTCOMES", "UnsafePath", "best_model",
           "db_state", "labelled", "load_row_sample", "map_array", "method_label", "no_database", "open_page",
           "per_method_spearman", "render_sample", "requested_page", "show_table", "url_page", "url_range",
           "url_selectbox", "url_slider"]
