"""The dashboard's read model: parameterised queries, their Streamlit cache, image and region reload for
display, widgets and rendering.  Pages import only this package; nothing else under ``engine/`` imports
streamlit."""
from __future__ import annotations

from ..metrics.summaries import method_label

__all__ = ["method_label"]
