"""The pages' Plotly charts with one theme, set here once: 26 distinct colours (one per method) passed to
each chart, never written into ``plotly.express.defaults`` (a page's import changes nothing global).

Curves that compare methods name each method with its area under the curve in the legend
(:func:`with_auc`), so 10-20 curves can be told apart without hovering."""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import plotly.express as px

COLOURS = tuple(px.colors.qualitative.Alphabet)  # 26 distinct colours

bar = partial(px.bar, color_discrete_sequence=COLOURS)
line = partial(px.line, color_discrete_sequence=COLOURS)
scatter = partial(px.scatter, color_discrete_sequence=COLOURS)


def auc(x, y) -> float:
    """Trapezoidal area under ``y(x)`` (x sorted first); NaN with fewer than two finite points."""
    pts = pd.DataFrame({"x": np.asarray(x, float), "y": np.asarray(y, float)}).dropna().sort_values("x")
    if len(pts) < 2:
        return float("nan")
    xs, ys = pts["x"].to_numpy(), pts["y"].to_numpy()
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2))


def with_auc(curves: pd.DataFrame, by: str = "method", x: str = "x", y: str = "y") -> pd.DataFrame:
    """``curves`` with ``by`` renamed "<name> (AUC 0.123)", the trapezoidal area of each curve; rows in
    the order of their AUC (highest first), so the legend lists them that way."""
    areas = {k: auc(g[x], g[y]) for k, g in curves.groupby(by, sort=False)}
    names = {k: f"{k} (AUC {a:.3f})" if a == a else f"{k} (AUC n/a)" for k, a in areas.items()}
    rank = {k: -a if a == a else np.inf for k, a in areas.items()}
    out = curves.assign(_rank=curves[by].map(rank)).sort_values(["_rank", by, x], kind="stable")
    return out.drop(columns="_rank").assign(**{by: lambda f: f[by].map(names)})


def facet_label(text: str, width: int = 26) -> str:
    """A facet title without plotly's ``column=`` prefix (only the first ``=``: a value such as
    ``attention (layer=8)`` stays whole), wrapped at spaces to lines of about ``width`` characters."""
    value = text.split("=", 1)[-1]
    lines, line = [], ""
    for word in value.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "<br>".join([*lines, line])


def tidy_facets(fig, font_size: int = 11):
    """Facet titles as :func:`facet_label` in a smaller font, so neighbouring titles never run into each
    other; returns ``fig``."""
    fig.for_each_annotation(lambda a: a.update(text=facet_label(a.text), font={"size": font_size}))
    return fig
