"""Names for models in legends: the label (``model_id`` without its ``@sha`` suffix), the whole id only
where two models of one chart would share a label."""
from __future__ import annotations

from collections import Counter


def model_labels(model_ids) -> dict[str, str]:
    """{model_id: the name a legend shows}."""
    ids = list(dict.fromkeys(model_ids))
    short = {m: str(m).rsplit("@", 1)[0] for m in ids}
    seen = Counter(short.values())
    return {m: short[m] if seen[short[m]] == 1 else str(m) for m in ids}
