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
import random
from dataclasses import dataclass
from pathlib import Path

from ..data import DatasetError, DatasetSpec, Record, fingerprint, load_records, read_image, region_names
from ..data.splits import select_scored
from ..data.synthetic import GENERATORS
from ..metrics import METRICS
from ..store import identity
from .experiment import Experiment
from .validate import generator_config

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


def spec_for(block: dict, exp: Experiment, work_dir: Path, seed: int, progress: bool) -> DatasetSpec:
    block = {k: v for k, v in block.items() if k != "models"}  # the runner's key, not the spec's
    gen = block.pop("generate", None)
    if gen is None:
        root = exp.resolve(block.get("root"))
        return DatasetSpec.from_dict({**block, "root": str(root)})
    cfg_cls, generate, make_spec = GENERATORS[gen]
    params = block.pop("params", {})
    if isinstance(params, dict) and "seed" in {f.name for f in dataclasses.fields(cfg_cls)}:
        params = {"seed": seed, **params}
    cfg = generator_config(gen, cfg_cls, params, f"dataset {block['name']!r}")
    root = Path(block.pop("root", f"demo/{block['name']}"))
    root = root if root.is_absolute() else work_dir / root
    generate(root, cfg, progress=progress)
    base = make_spec(root).to_dict()
    return DatasetSpec.from_dict({**base, **block, "root": str(root)})


SAMPLE_READS = 5


def readable_sample(spec: DatasetSpec, records: list[Record]) -> None:
    """Read a seeded sample of the images before anything is published; DatasetError when none can be read
    (a table of files that are not images, a wrong image_template)."""
    picked = random.Random(0).sample(records, min(SAMPLE_READS, len(records)))
    reasons = []
    for r in picked:
        try:
            read_image(r.image_path, spec)
            return
        except (OSError, ValueError, RuntimeError) as exc:  # DatasetError is a ValueError
            reasons.append(" ".join(str(exc).split()))
    if reasons:
        raise DatasetError(f"dataset {spec.name!r}: none of {len(picked)} sampled images can be read "
                           f"(e.g. {reasons[0]})")


def check_class_metrics(exp: Experiment, spec: DatasetSpec, classes: tuple[str, ...]) -> None:
    """Class-sensitivity metrics compare the maps of two classes: refuse a one-class dataset (its model has
    one output) before anything is trained."""
    wanted = [m for m in exp.metrics if METRICS[m].kind == "class_sensitivity"]
    if wanted and len(classes) < 2:
        raise DatasetError(f"dataset {spec.name!r}: {', '.join(wanted)} compare the maps of two classes, but it "
                           f"has {len(classes)} class ({', '.join(classes) or 'none'}) and its model one output; "
                           f"remove these metrics or give the dataset a second class")


def check_regions(exp: Experiment, prepared: list[PreparedDataset]) -> None:
    """``regions`` names regions some dataset has (else every score would be silently missing)."""
    if not exp.regions:
        return
    have = {n for d in prepared for r in d.records for n in region_names(r, d.spec)}
    unknown = sorted(set(exp.regions) - have)
    if unknown:
        raise DatasetError(f"regions {unknown} are in no dataset of this experiment; the datasets have "
                           f"{sorted(have)}")


def prepare(exp: Experiment, work_dir: Path, progress: bool = True,
            failed: list[tuple[str, DatasetError]] | None = None, check=None) -> list[PreparedDataset]:
    """Load (generate first) every dataset of ``exp``, as check-data checks it (most rows must name files
    that exist; a sample of images must be readable).  A dataset that cannot be listed raises, or with
    ``failed`` is left out and ``(name, error)`` appended: the run stops that dataset with that reason and
    goes on with the others.  ``check(prepared)`` runs before anything is logged, so bad input stays one
    line."""
    out, stopped = [], []
    for block in exp.datasets:
        spec = spec_for(block, exp, work_dir, exp.seed, progress)
        try:
            records, classes = load_records(spec, check_files=True)
            check_class_metrics(exp, spec, classes)
            readable_sample(spec, records)
        except DatasetError as exc:
            if failed is None:
                raise
            stopped.append((spec.name, exc))
            continue
        fp = fingerprint(records, spec)
        scored = tuple(r.image_id for r in select_scored(records, spec, classes))
        out.append(PreparedDataset(spec, json.dumps(spec.to_dict(), sort_keys=True, default=str), records, classes,
                                   fp, identity.dataset_id(spec.name, fp), scored, block))
    if failed is not None:
        failed.extend(stopped)
    check_regions(exp, out)
    if check is not None:
        check(out)
    for name, exc in stopped if out else ():
        log.error("dataset %s stopped: %s", name, exc)
    for d in out:
        log.info("dataset %s: %d images, %d scored", d.spec.name, len(d.records), len(d.scored))
    return out
