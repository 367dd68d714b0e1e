"""Names for models and datasets on the pages.  Models in legends: the label (``model_id`` without its
``@sha`` suffix), the whole id only where two models of one chart would share a label."""
from __future__ import annotations

from collections import Counter


def model_labels(model_ids) -> dict[str, str]:
    """{model_id: the name a legend shows}."""
    ids = list(dict.fromkeys(model_ids))
    short = {m: str(m).rsplit("@", 1)[0] for m in ids}
    seen = Counter(short.values())
    return {m: short[m] if seen[short[m]] == 1 else str(m) for m in ids}


def dataset_labels(rows) -> dict[str, str]:
    """{dataset_id: "name (hash)"} for a picker, from rows with ``dataset_id`` and ``dataset`` (its name),
    sorted by id."""
    pairs = dict(zip(rows["dataset_id"], rows["dataset"]))
    return {d: f"{pairs[d]} ({str(d).split('@')[-1]})" for d in sorted(pairs)}
