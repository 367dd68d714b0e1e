"""Turn an experiment's ``[[datasets]]`` blocks into loaded datasets (generating demo data first).

A block with ``generate = "<generator>"`` writes the seeded demo files under the work directory
(``params`` go to the generator's config) and starts from the generator's own spec; every other
key of the block overrides that spec.  Any other block is an :class:`engine.data.DatasetSpec`
whose relative ``root`` resolves against the experiment file's folder.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..data import DatasetError, DatasetSpec, Record, fingerprint, load_records
from ..data.splits import select_scored
from ..data.synthetic import GENERATORS
from ..store import identity
from .experiment import Experiment

log = logging.getLogger(__name__)


@dataclass
class PreparedDataset:
    spec: DatasetSpec
    spec_json: str           # what workers re-open the dataset from
    records: list[Record]
    classes: tuple[str, ...]
    fingerprint: str
    dataset_id: str
    scored: tuple[str, ...]  # image ids that get explained and scored
    block: dict | None = None  # its [[datasets]] block


def _config(cls, params: dict, base=None):
    """A generator config from TOML values (on top of ``base``): nested tables become nested
    configs, arrays tuples."""
    out = {}
    names = {f.name: f for f in dataclasses.fields(cls)}
    for k, v in params.items():
        if k not in names:
            raise ValueError(f"unknown key {k!r}; allowed: {sorted(names)}")
        current = getattr(base, k) if base is not None else (
            names[k].default if names[k].default is not dataclasses.MISSING else names[k].default_factory())
        if isinstance(v, dict) and dataclasses.is_dataclass(current):
            v = _config(type(current), v, current)
        elif isinstance(v, list):
            v = tuple(v)
        out[k] = v
    return dataclasses.replace(base, **out) if base is not None else cls(**out)


def spec_for(block: dict, exp: Experiment, work_dir: Path, seed: int, progress: bool) -> DatasetSpec:
    block = {k: v for k, v in block.items() if k != "models"}  # the runner's key, not the spec's
    gen = block.pop("generate", None)
    if gen is None:
        root = exp.resolve(block.get("root"))
        return DatasetSpec.from_dict({**block, "root": str(root)})
    cfg_cls, generate, make_spec = GENERATORS[gen]
    try:
        params = block.pop("params", {})
        if "seed" in {f.name for f in dataclasses.fields(cfg_cls)}:
            params = {"seed": seed, **params}
        cfg = _config(cfg_cls, params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"dataset {block['name']!r}: bad generator params for {gen!r} ({exc})") from None
    root = Path(block.pop("root", f"demo/{block['name']}"))
    root = root if root.is_absolute() else work_dir / root
    generate(root, cfg, progress=progress)
    base = make_spec(root).to_dict()
    return DatasetSpec.from_dict({**base, **block, "root": str(root)})


def prepare_one(exp: Experiment, block: dict, work_dir: Path, progress: bool = True) -> PreparedDataset:
    """One ``[[datasets]]`` block: generated if it is a demo set, loaded, fingerprinted (a dataset that
    cannot be listed raises :class:`DatasetError`)."""
    spec = spec_for(block, exp, work_dir, exp.seed, progress)
    records, classes = load_records(spec)
    fp = fingerprint(records, spec)
    scored = tuple(r.image_id for r in select_scored(records, spec, classes))
    log.info("dataset %s: %d images, %d scored", spec.name, len(records), len(scored))
    return PreparedDataset(spec, json.dumps(spec.to_dict(), sort_keys=True, default=str), records, classes,
                           fp, identity.dataset_id(spec.name, fp), scored, block)


def prepare(exp: Experiment, work_dir: Path, progress: bool = True,
            failed: list[tuple[str, DatasetError]] | None = None) -> list[PreparedDataset]:
    """Load every dataset of ``exp``.  A dataset that cannot be listed (a template matching no file,
    no usable image, ...) raises, or with ``failed`` is left out and ``(name, error)`` appended: the
    run stops that dataset with that reason and goes on with the others."""
    out = []
    for block in exp.datasets:
        try:
            out.append(prepare_one(exp, block, work_dir, progress))
        except DatasetError as exc:
            if failed is None:
                raise
            log.error("dataset %s stopped: %s", block["name"], exc)
            failed.append((block["name"], exc))
    return out
