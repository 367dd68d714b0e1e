"""Dashboard widgets shared by the pages."""
from __future__ import annotations

import streamlit as st


def url_selectbox(label: str, values, key: str, widget_prefix: str, prefer=None, fmt=str):
    """A sidebar selectbox whose choice lives in the URL (``st.query_params[key]``), so a view can be
    shared.  Without a URL value it starts at ``prefer`` if offered, else the first value; the widget's
    own key is ``widget_prefix + key``."""
    values = list(values)
    current = st.query_params.get(key)
    index = values.index(current) if current in values else values.index(prefer) if prefer in values else 0
    choice = st.sidebar.selectbox(label, values, index=index, key=f"{widget_prefix}{key}", format_func=fmt)
    st.query_params[key] = choice
    return choice
