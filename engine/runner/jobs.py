"""The job grid of an experiment: content keys, and which units of work are already done.

A unit of work is a *job* with a content key -- a hash of everything that determines its result:

* ``train``    (dataset fingerprint, model entry, seed, torch version) -> a checkpoint;
* ``predict``  (dataset fingerprint, checkpoint sha256) -> predictions + classification metrics;
* ``evaluate`` (dataset fingerprint, checkpoint sha256, method + rule version + params,
  metric + rule version + params, regions) -> one method's maps scored by one metric;
* ``sanity``   (dataset fingerprint, checkpoint sha256, methods + versions + params, images, seed).

A method or metric registered by a plugin (:mod:`engine.runner.plugins`) adds the sha256 of its module's
file to the keys of its evaluate and sanity jobs (built-ins are keyed by their rule version alone, so
their keys are unchanged by the option): editing a plugin re-runs exactly the jobs that use it.

Every key also covers the run's ``precision`` when it is not ``fp32`` (bf16 changes the weights,
maps and scores; fp32 keys are unchanged from before the option existed).

Keys of finished jobs are stored in the ``jobs`` table; a job whose key is there is skipped.
Changing a parameter, a rule version, the data or the checkpoint changes the key, so exactly the
affected jobs run again and old scores are never mixed with new ones.  Execution groups pending
evaluate jobs into *chunks* (all trace methods of a (dataset, model) share one forward+backward;
each Captum method is its own chunk); a chunk is committed atomically with its job rows.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..explain import METHODS
from ..metrics import METRICS
from ..models.given import hub_cache_file, weights_digest
from ..store import canonical_json
from .experiment import ModelEntry


def content_key(kind: str, *parts, precision: str = "fp32") -> str:
    parts = parts if precision == "fp32" else (*parts, {"precision": precision})
    blob = json.dumps([kind, *parts], sort_keys=True, separators=(",", ":"), default=str)
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:24]}"


def train_key(fp: str, entry: ModelEntry, seed: int, precision: str = "fp32") -> str:
    # the display name and the methods it is explained with do not change the weights
    if entry.as_given:  # identity from the bytes of the weights, not where they lie (the same file runs once)
        return content_key("train", fp, {**entry.model_dump(exclude={"label", "methods", "weights"}),
                                         "weights_sha256": given_digest(entry)}, seed, torch.__version__,
                           precision=precision)
    return content_key("train", fp, entry.model_dump(exclude={"label", "methods"}), seed, torch.__version__,
                       precision=precision)


def given_digest(entry: ModelEntry) -> str | None:
    """sha256 of the bytes of an as-given entry's weights (file, folder, or the cached hub file)."""
    if entry.weights:
        return weights_digest(entry.weights)
    try:
        return weights_digest(hub_file=hub_cache_file(entry.name))
    except Exception:  # noqa: BLE001 - not in the cache: the preflight says so before any work
        return None


def checkpoint_path(ckpt_dir: Path, entry: ModelEntry, key: str) -> Path:
    """Where the checkpoint of a train job lives (shared by every database that uses the folder)."""
    return ckpt_dir / f"{entry.name}-{entry.init}-{key}.safetensors"


def predict_key(fp: str, sha256: str, precision: str = "fp32") -> str:
    return content_key("predict", fp, sha256, precision=precision)


def method_key(name: str, params: dict) -> tuple[str, int, str]:
    return name, METHODS[name].version, canonical_json(params)


def metric_key(name: str, params: dict) -> tuple[str, int, str]:
    return name, METRICS[name].version, canonical_json(params)


def plugin_sources(methods=(), metrics=()) -> dict[str, str]:
    """``{'method:name' | 'metric:name': source sha256}`` of the plugins among ``methods`` / ``metrics`` (names);
    empty for built-ins."""
    out = {f"method:{m}": METHODS[m].source for m in methods if METHODS[m].source}
    out.update({f"metric:{m}": METRICS[m].source for m in metrics if METRICS[m].source})
    return out


def evaluate_key(fp: str, sha256: str, method: tuple, metric: tuple, regions, precision: str = "fp32") -> str:
    code = plugin_sources([method[0]], [metric[0]])
    return content_key("evaluate", fp, sha256, method, metric, sorted(regions) if regions else None,
                       *([{"plugins": code}] if code else []), precision=precision)


def sanity_key(fp: str, sha256: str, methods: list[tuple], images: int, seed: int, precision: str = "fp32") -> str:
    code = plugin_sources([m[0] for m in methods])
    return content_key("sanity", fp, sha256, sorted(methods), images, seed, *([{"plugins": code}] if code else []),
                       precision=precision)


@dataclass
class EvalJob:
    key: str
    method: str
    method_params: dict
    metric: str
    metric_params: dict


@dataclass
class Chunk:
    """Evaluate jobs of one (dataset, model) executed together and committed atomically."""
    name: str
    jobs: list[EvalJob] = field(default_factory=list)

    def variants(self) -> list[tuple[str, dict]]:
        out: list[tuple[str, dict]] = []
        for j in self.jobs:
            if (j.method, j.method_params) not in out:
                out.append((j.method, j.method_params))
        return out

    def metrics_for(self, method: str, params: dict) -> dict[str, dict]:
        return {j.metric: j.metric_params for j in self.jobs if j.method == method and j.method_params == params}


def plan_chunks(fp: str, sha256: str, variants: list[tuple[str, dict]], metrics: dict[str, dict], regions,
                done: set[str], precision: str = "fp32") -> tuple[list[Chunk], int]:
    """Pending evaluate jobs of one (dataset, model), grouped into chunks; also the number skipped.

    The grouping depends only on the experiment (never on what is done), so a resumed run computes
    each chunk exactly as an uninterrupted run would.
    """
    trace = Chunk("trace methods")
    chunks: list[Chunk] = [trace]
    skipped = 0
    for name, params in variants:
        target = trace if METHODS[name].kind == "trace" else Chunk(f"{name} {canonical_json(params)}")
        if target is not trace:
            chunks.append(target)
        for metric, kparams in metrics.items():
            key = evaluate_key(fp, sha256, method_key(name, params), metric_key(metric, kparams), regions, precision)
            if key in done:
                skipped += 1
            else:
                target.jobs.append(EvalJob(key, name, params, metric, kparams))
    return [c for c in chunks if c.jobs], skipped
