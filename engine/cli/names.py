"""The names a user types into ``table`` and ``figure``, resolved against one results database: a dataset
by name or id, a model by the dashboard's label (``vit_demo:trained``), ``name:fine_tuning`` or its full
id, methods with their parameters (``integrated_gradients(n_steps=16)``), a metric, and a region (by
default the dataset's first mask region with scores, the dashboard's rule).

Anything unknown raises :class:`UnknownName`, whose message is one line that lists the valid choices.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..dashboard import method_label, queries
from ..dashboard.labels import model_labels
from ..dashboard.regions import default_region, ordered_regions


class UnknownName(ValueError):
    """A name that is not in the database; the message lists the valid ones."""


def _choices(values) -> str:
    """The valid names, sorted (the same listing however the database happens to order its rows)."""
    values = sorted(dict.fromkeys(str(v) for v in values))
    return ", ".join(values) if values else "(none)"


@dataclass(frozen=True)
class Scope:
    db: Path
    dataset_id: str
    dataset: str


def resolve_dataset(db: Path, dataset: str) -> Scope:
    """The dataset named ``dataset`` (a name or an id); the newest id when a name has several."""
    if not queries.database_exists(db):
        raise UnknownName(f"{db}: no results database here")
    ds = queries.datasets(db)
    hit = ds[(ds.name == dataset) | (ds.dataset_id == dataset)].sort_values("dataset_id")
    if hit.empty:
        raise UnknownName(f"{db}: no dataset {dataset!r}; datasets: {_choices(ds.name)}")
    return Scope(db, str(hit.dataset_id.iloc[-1]), str(hit.name.iloc[-1]))


def resolve_model(scope: Scope, model: str) -> str:
    """The model id of ``model``: its full id, the dashboard's label, or ``name:fine_tuning``."""
    models = queries.models(scope.db)
    models = models[models.dataset_id == scope.dataset_id]
    ids = list(models.model_id)
    labels = model_labels(ids)
    names = {mid: f"{n}:{ft}" for mid, n, ft in zip(models.model_id, models.name, models.fine_tuning)}
    for key in (lambda m: m, lambda m: labels[m], lambda m: str(m).rsplit("@", 1)[0], lambda m: names[m]):
        hit = [m for m in ids if key(m) == model]
        if len(hit) == 1:
            return hit[0]
        if len(hit) > 1:
            raise UnknownName(f"model {model!r} names {len(hit)} models of dataset {scope.dataset}; "
                              f"give one of: {_choices(hit)}")
    raise UnknownName(f"no model {model!r} in dataset {scope.dataset}; models: "
                      f"{_choices(labels[m] for m in ids)}")


def split_methods(text: str) -> list[str]:
    """``a,b(x=1, y=2),c`` -> ``['a', 'b(x=1, y=2)', 'c']`` (commas inside parentheses stay)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [m.strip() for m in out if m.strip()]


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text.strip("'\"")


def parse_method(text: str) -> tuple[str, dict | None]:
    """``name`` -> (name, None); ``name(k=v, ...)`` or ``name (k=v)`` -> (name, {k: v}) with JSON values
    (``16`` is an int, ``true`` a bool, anything else a string)."""
    name, paren, rest = text.partition("(")
    name = name.strip()
    if not paren:
        return name, None
    if not rest.rstrip().endswith(")"):
        raise UnknownName(f"method {text!r}: expected name(key=value, ...)")
    params = {}
    for part in split_methods(rest.rstrip()[:-1]):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise UnknownName(f"method {text!r}: expected name(key=value, ...)")
        params[key.strip()] = _value(value.strip())
    return name, params


def resolve_methods(scope: Scope, model_id: str, text: str) -> list[tuple[str, str]]:
    """(method, stored parameters) of each method in ``text``: a bare name picks its default-parameter
    variant (or its only one); ``name(k=v)`` the variant whose parameters include those."""
    options = queries.method_options(scope.db, scope.dataset_id, model_id)
    variants = [(m, p) for m, p in zip(options.method, options.method_params)]
    valid = _choices(method_label(m, p).replace(" (", "(") for m, p in variants)
    out = []
    for item in split_methods(text):
        name, given = parse_method(item)
        mine = [(m, p) for m, p in variants if m == name]
        if not mine:
            raise UnknownName(f"no method {name!r} for this model; methods: {valid}")
        if given is None:
            hit = [v for v in mine if json.loads(v[1] or "{}") == {}] or (mine if len(mine) == 1 else [])
        else:
            hit = [v for v in mine if given.items() <= json.loads(v[1] or "{}").items()]
        if len(hit) != 1:
            what = "no variant" if not hit else f"{len(hit)} variants"
            raise UnknownName(f"method {item!r}: {what} of {name} matches; give one of: "
                              f"{_choices(method_label(m, p).replace(' (', '(') for m, p in (hit or mine))}")
        out.append(hit[0])
    if not out:
        raise UnknownName(f"no method given; methods: {valid}")
    return out


def resolve_metric(scope: Scope, metric: str, model_id: str | None = None) -> str:
    opts = _options(scope, model_id)
    if metric not in set(opts.metric):
        raise UnknownName(f"no scores of metric {metric!r} in dataset {scope.dataset}; metrics: "
                          f"{_choices(sorted(set(opts.metric)))}")
    return metric


def resolve_region(scope: Scope, metric: str, region: str | None, model_id: str | None = None) -> str:
    """``region``, checked; by default the dataset's first mask region with scores of ``metric``."""
    opts = _options(scope, model_id)
    regions = queries.dataset_regions(scope.db, scope.dataset_id)
    available = ordered_regions(opts[opts.metric == metric].region, regions)
    if region is None:
        region = default_region(available, regions)
    if region not in available:
        raise UnknownName(f"no scores of {metric} on region {region!r} in dataset {scope.dataset}; regions: "
                          f"{_choices(available)}")
    return region


def _options(scope: Scope, model_id: str | None):
    opts = queries.score_options(scope.db)
    opts = opts[opts.dataset_id == scope.dataset_id]
    return opts if model_id is None else opts[opts.model_id == model_id]
