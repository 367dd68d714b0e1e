"""Dashboard widgets shared by the pages: every filter lives in the URL (``st.query_params``), so a
view can be shared; without a URL value each widget starts at a sensible default."""
from __future__ import annotations

import os
from typing import Callable

import pandas as pd
import streamlit as st

from ..store.read import database_exists
from . import live
from .cache import Db, db_state
from .urlparams import choice_note, number_note, range_note


def url_selectbox(label: str, values, key: str, widget_prefix: str, prefer=None, fmt=str, where=None):
    """A selectbox (sidebar unless ``where`` is given) whose choice is ``st.query_params[key]``.
    Without a URL value it starts at ``prefer`` if offered, else the first value; the widget's own
    key is ``widget_prefix + key``."""
    values = list(values)
    current = st.query_params.get(key)
    index = values.index(current) if current in values else values.index(prefer) if prefer in values else 0
    first = f"{widget_prefix}{key}" not in st.session_state  # the URL came from outside, not from this widget
    choice = (where or st.sidebar).selectbox(label, values, index=index, key=f"{widget_prefix}{key}",
                                             format_func=fmt)
    if first:
        _note(choice_note(key, current, values, choice))
    st.query_params[key] = choice
    return choice


def _note(text: str | None) -> None:
    """A URL parameter that does not apply, said once (the widget then writes a valid value to the URL)."""
    if text:
        st.warning(text)


def _float(text, default: float) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return default
    return v if v == v else default


def url_range(label: str, key: str, widget_prefix: str, lo: float, hi: float, step: float = 0.05,
              where=None, help: str | None = None) -> tuple[float, float]:
    """A two-handle slider over [lo, hi]; the URL holds ``key=low~high``."""
    raw = st.query_params.get(key, "")
    if f"{widget_prefix}{key}" not in st.session_state:
        _note(range_note(key, raw, lo, hi))
    parts = raw.split("~") if "~" in raw else []
    a = min(max(_float(parts[0] if parts else None, lo), lo), hi)
    b = min(max(_float(parts[1] if parts else None, hi), lo), hi)
    a, b = min(a, b), max(a, b)
    val = (where or st.sidebar).slider(label, lo, hi, (a, b), step, key=f"{widget_prefix}{key}", help=help)
    a, b = float(val[0]), float(val[1])
    if (a, b) == (lo, hi):
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = f"{a:g}~{b:g}"
    return a, b


def url_slider(label: str, key: str, widget_prefix: str, lo: float, hi: float, default: float,
               step: float = 0.05, where=None, help: str | None = None) -> float:
    """A one-handle slider whose value is ``st.query_params[key]``."""
    if f"{widget_prefix}{key}" not in st.session_state:
        _note(number_note(key, st.query_params.get(key), lo, hi))
    v = min(max(_float(st.query_params.get(key), default), lo), hi)
    v = float((where or st.sidebar).slider(label, lo, hi, v, step, key=f"{widget_prefix}{key}", help=help))
    st.query_params[key] = f"{v:g}"
    return v


def requested_page(key: str, widget_prefix: str) -> int:
    """The page number asked for (the widget's state, else the URL), before :func:`url_page` draws and
    clamps it -- so a page's rows can be fetched together with their count."""
    raw = st.session_state.get(f"{widget_prefix}{key}", st.query_params.get(key, 1))
    try:
        return max(int(raw), 1)
    except (TypeError, ValueError):
        return 1


def url_page(label: str, key: str, widget_prefix: str, pages: int, where=None) -> int:
    """A 1-based page number whose value is ``st.query_params[key]`` (clamped to the pages there are)."""
    pages, wkey = max(pages, 1), f"{widget_prefix}{key}"
    v = min(requested_page(key, widget_prefix), pages)
    if wkey in st.session_state:  # fewer pages after a filter changed: clamp the widget's own state
        st.session_state[wkey] = v
        v = (where or st.sidebar).number_input(label, min_value=1, max_value=pages, step=1, key=wkey)
    else:
        v = (where or st.sidebar).number_input(label, min_value=1, max_value=pages, value=v, step=1, key=wkey)
    v = int(v)
    st.query_params[key] = str(v)
    return v


def no_database(path: str, what: str = "results") -> None:
    """The message every page shows instead of an error when there is nothing to show yet: one
    sentence for a missing database, an empty one, or one a run is writing for the first time
    (then the live run panel too, which refreshes the page as results land)."""
    view = live.live_run(path)
    msg = live.database_message(path, database_exists(path), False, view)
    st.info(msg + ("" if what == "results" else f" (This page needs {what}.)"))
    if view is not None and view.running:
        live_panel(path)
    st.stop()


def live_panel(path: str, every: float = 3.0) -> None:
    """The run writing ``path`` now (stage, jobs, dataset / model, time, failures), refreshed every
    ``every`` seconds; the whole page reruns when the database changes or the run ends."""


    def mtime():
        try:
            return os.path.getmtime(path)
        except OSError:
            return None

    seen = mtime()

    @st.fragment(run_every=every)
    def _panel():
        view = live.live_run(path)
        if view is None:
            return
        if not view.running:
            if st.session_state.get("_live_was_running"):
                st.session_state["_live_was_running"] = False
                st.rerun()
            return
        st.session_state["_live_was_running"] = True
        if mtime() != seen:
            st.rerun()
        with st.container(border=True):
            st.markdown(f"**{view.headline}**")
            st.progress(view.fraction)
            st.caption(" · ".join(view.details))

    _panel()


def open_page(title: str, heading: str, options: Callable[[Db], pd.DataFrame] = Db.score_options,
              what: str = "scores") -> tuple[Db, pd.DataFrame]:
    """Page setup shared by the pages: config, heading, the database and the page's option rows
    (``options``, a :class:`Db` query without arguments); stops with :func:`no_database` when there is
    nothing to show.  Returns (the database, the options DataFrame)."""
    st.set_page_config(page_title=title, layout="wide")
    st.title(heading)
    db = db_state()
    if not db.ready:
        no_database(db.path)
    opts = options(db)
    if opts.empty:
        no_database(db.path, what)
    return db, opts


def show_table(df, formats: dict | str | None = None, precision: int = 3, hide_index: bool = False, **kwargs):
    """``st.dataframe`` with numbers rounded for reading and missing values shown as '–' (not 'None');
    ``formats``: a format string for every column, or {column: format}."""
    return st.dataframe(df.style.format(formats, precision=precision, na_rep="–"), hide_index=hide_index,
                        width="stretch", **kwargs)
