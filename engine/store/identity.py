"""One home for the identities the results database keys its rows by, and for its clock.

* ``dataset_id``: ``name@fingerprint[:10]`` -- the same files and spec give the same id;
* ``model_id``: ``label@sha256[:12]``, or ``name:init@sha256[:12]`` without a label -- the checkpoint's
  content, so a retrained model is a new row;
* :func:`utc_now`: naive UTC, as the ``TIMESTAMP`` columns hold it.
"""
from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def dataset_id(name: str, fingerprint: str) -> str:
    return f"{name}@{fingerprint[:10]}"


def model_id(name: str, init: str, sha256: str, label: str | None = None) -> str:
    return f"{label or f'{name}:{init}'}@{sha256[:12]}"
