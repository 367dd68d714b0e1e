"""Data and URL values shown as plain text: never a link, an image, HTML or a spreadsheet formula.

Image ids, model labels, dataset and method names, run ids, failure reasons and URL parameters come from
the user or the data, not from us.  Every page passes them through one of these before they reach:

* Streamlit markdown (``st.markdown``, ``st.caption``, ``st.info`` / ``warning``, widget and expander
  labels): :func:`md` backslash-escapes every ASCII punctuation character (CommonMark escapes them all),
  so ``[x](https://...)``, ``![](...)``, ``<a href>``, ``:red[...]`` directives and ``$...$`` maths all
  show as the characters they are; and :func:`unlink` breaks the GFM autolink literals (``https://``,
  ``www.``, ``a@b.c``), which the renderer finds in the *unescaped* text, with an invisible word joiner;
* a Markdown file read by any renderer (``report --format md``): :func:`md_text` writes ``<``, ``>`` and
  ``&`` as entities (Python-Markdown does not honour a backslash before ``<``), backslash-escapes what
  CommonMark, GFM and Python-Markdown give meaning to, and breaks autolinks the same way;
* Plotly text (legend entries, category ticks, hover labels, facet titles, titles), which renders a
  subset of HTML including ``<a href>``: :func:`plotly_text` / :func:`plotly_frame` escape ``&``, ``<``
  and ``>`` as entities, which Plotly shows literally;
* CSV exports opened in a spreadsheet: :func:`csv_safe` / :func:`csv_bytes` prefix a text cell that
  starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return with ``'`` (OWASP's advice), so it is
  not run as a formula.  Numbers stay numbers.
"""
from __future__ import annotations

import html
import re
import string

import pandas as pd

_PUNCT = frozenset(string.punctuation)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
JOINER = "\u2060"  # WORD JOINER: invisible, and no autolink pattern crosses it
_WWW = re.compile(r"(www)(?=\.)", re.IGNORECASE)
_MAIL = re.compile(r"@(?=[-\w]+\.[-\w])")  # the domain part of an e-mail autolink (a model id's @hash is not)
_MD_SPECIAL = frozenset("\\`*_[]#|~$!")  # what a Markdown file's renderers give meaning to, but < > &


def unlink(text: str) -> str:
    """``text`` with a word joiner after every ``:`` that starts ``://``, before the ``.`` of ``www.`` and after
    an ``@`` that starts a domain (``a@b.c``): GFM's autolink literals (``https://x``, ``www.x``, ``a@b.c``,
    ``mailto:a@b.c``) no longer match, and the text reads the same."""
    text = text.replace("://", ":" + JOINER + "//")
    return _MAIL.sub("@" + JOINER, _WWW.sub(r"\1" + JOINER, text))


def md(value) -> str:
    """``value`` as plain text inside Streamlit markdown (one line; every punctuation mark escaped, autolinks
    broken)."""
    text = unlink("" if value is None else " ".join(str(value).split()))
    return "".join("\\" + c if c in _PUNCT else c for c in text)


def code(value) -> str:
    """``value`` as a Markdown code span (one line): nothing inside renders, no autolink either; the fence is
    longer than any run of backticks in the value."""
    text = " ".join(("" if value is None else str(value)).split())
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    if not text:
        return "` `"
    pad = " " if text[0] == "`" or text[-1] == "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_text(value) -> str:
    """``value`` as plain text in a Markdown file, whichever renderer reads it (one line): ``&``, ``<`` and
    ``>`` as entities, the characters Markdown gives meaning to backslash-escaped, autolinks broken."""
    text = unlink("" if value is None else re.sub(r"\s+", " ", str(value)))  # edges kept: "**" splits text
    text = html.escape(text, quote=False)
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def plotly_text(value) -> str:
    """``value`` as plain text in a Plotly label, title or category (HTML tags shown, not rendered)."""
    return html.escape("" if value is None else str(value), quote=False)


def plotly_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text columns are :func:`plotly_text`-escaped (for ``plotly.express``)."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(lambda v: plotly_text(v) if isinstance(v, str) else v)
    return out


def neutralise_cell(value):
    """A text cell a spreadsheet would run as a formula gets a leading ``'``; anything else is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every text cell (and column name) :func:`neutralise_cell`-ed; numeric columns
    are left as they are (a negative number is not a formula)."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(neutralise_cell)
    out.columns = [neutralise_cell(c) if isinstance(c, str) else c for c in out.columns]
    if isinstance(out.index, pd.Index) and (out.index.dtype == object or pd.api.types.is_string_dtype(out.index)):
        out.index = out.index.map(neutralise_cell)
    return out


def csv_bytes(df: pd.DataFrame, index: bool = False) -> bytes:
    """UTF-8 CSV of :func:`csv_safe` ``(df)``: what every CSV download and export writes."""
    return csv_safe(df).to_csv(index=index).encode("utf-8")
