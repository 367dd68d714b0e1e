"""Train / val / test assignment: from each image's own id (hash-based), grouped by patient, or read
from split files / a published splits CSV; and the seeded choice of the images that are scored.

A drawn split depends only on the image's own id (or its group), the seed and the fractions: the id
is hashed with the seed to a number u in [0, 1), and u < test fraction -> test, u < test + val ->
val, else train.  Adding, removing or breaking one file therefore moves no other image; the price is
that the split sizes follow the fractions only on average (no per-class stratification).
"""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from .errors import Issues
from .spec import SPLITS

SPLITS_CSV_COLUMNS = ("image_id", "label", "group", "split")


def unit_hash(key: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``key`` and ``seed`` alone (sha256, the first 8 bytes)."""
    digest = hashlib.sha256(f"{int(seed)}\x00{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def hash_split(key: str, fractions, seed: int) -> str:
    """The split of one image (``key`` = its id, or its group so a group stays together)."""
    u = unit_hash(key, seed)
    _, f_val, f_test = fractions
    return "test" if u < f_test else "val" if u < f_test + f_val else "train"


def assign_splits(ids: list[str], groups: list[str | None] | None, fractions, seed: int) -> list[str]:
    """Splits of ``ids``: each from its group when given (a whole group goes to one split), else its id."""
    groups = groups or [None] * len(ids)
    return [hash_split(g or i, fractions, seed) for i, g in zip(ids, groups)]


def groups_spanning_splits(groups: list[str], splits: list[str]) -> dict[str, list[str]]:
    seen: dict[str, set[str]] = {}
    for g, s in zip(groups, splits):
        seen.setdefault(g, set()).add(s)
    return {g: sorted(s) for g, s in sorted(seen.items()) if len(s) > 1}


def read_split_files(root: Path, template: str, issues: Issues) -> dict[str, str]:
    """``id -> split`` from one file per split (e.g. VOC ``ImageSets/Main/{split}.txt``; the first
    token of each non-empty line is the id).  A missing file is an empty split (noted); an id listed
    in two splits is an error."""
    out: dict[str, str] = {}
    found = False
    for split in SPLITS:
        p = root / template.format(split=split)
        if not p.is_file():
            issues.warn(p, f"split file for {split!r} not found; that split is empty", "note")
            continue
        found = True
        for n, line in enumerate(p.read_text(encoding="utf-8-sig").splitlines(), start=1):
            tok = line.split()
            if not tok or tok[0].startswith("#"):
                continue
            if tok[0] in out and out[tok[0]] != split:
                issues.error(p, f"line {n}: id {tok[0]!r} is already in the {out[tok[0]]!r} split; kept there")
                continue
            out[tok[0]] = split
    if not found:
        issues.error(root / template, "no split file found (tried train, val, test)", fatal=True)
    return out


def write_splits_csv(records: list, classes: tuple[str, ...], path: str | Path) -> int:
    """Write ``image_id, label, group, split`` of every record (the published split); returns the rows."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(SPLITS_CSV_COLUMNS)
        for r in records:
            w.writerow([r.image_id, r.label_name or classes[r.label], r.group or "", r.split])
    return len(records)


def read_splits_csv(path: Path, issues: Issues) -> dict[str, str]:
    """``id -> split`` from a file written by ``check-data --splits-out`` (columns image_id and split;
    label and group are not read: the spec decides them)."""
    if not path.is_file():
        issues.error(path, "splits file not found", fatal=True)
    from .tables import pick_column, read_table
    header, rows = read_table(path)
    ic = pick_column(header, ("image_id",), path, "image id")
    sc = pick_column(header, ("split",), path, "split")
    out: dict[str, str] = {}
    for n, r in enumerate(rows, start=2):
        i, s = (r[ic].strip() if ic < len(r) else ""), (r[sc].strip() if sc < len(r) else "")
        if not i:
            continue
        if s not in SPLITS:
            issues.error(path, f"line {n}: split {s!r} of {i!r} is not one of {list(SPLITS)}; skipped")
            continue
        if i in out and out[i] != s:
            issues.error(path, f"line {n}: id {i!r} is already in the {out[i]!r} split; kept there")
            continue
        out[i] = s
    if not out:
        issues.error(path, "the splits file lists no images", fatal=True)
    return out


def select_scored(records: list, spec, classes: tuple[str, ...] | None = None) -> list:
    """The records whose explanations are scored, in record order.

    Keeps records of ``spec.score_split`` ("all": every split) whose class is in
    ``spec.score_classes`` (empty: every class; names as in ``classes`` / ``Record.label_name``);
    with ``spec.score_only_annotated`` only those with a box or a non-empty mask region; then, with
    ``spec.score_limit``, a seeded sample (``spec.score_seed``) of that many.  Deterministic for a seed.
    Records whose annotations cannot be read count as not annotated (check-data reports them)."""
    from .ground_truth import read_ground_truth
    from .annotations import AnnotationError

    def name(r):
        if r.label_name:
            return r.label_name
        return classes[r.label] if classes is not None else str(r.label)

    keep = [r for r in records if spec.score_split == "all" or r.split == spec.score_split]
    if spec.score_classes:
        keep = [r for r in keep if name(r) in spec.score_classes]
    if spec.score_only_annotated:
        def annotated(r):
            try:
                return read_ground_truth(r, spec).annotated
            except (AnnotationError, OSError, ValueError):
                return False
        keep = [r for r in keep if annotated(r)]
    if spec.score_limit is not None and len(keep) > spec.score_limit:
        rng = np.random.default_rng(spec.score_seed)
        chosen = sorted(rng.choice(len(keep), size=spec.score_limit, replace=False).tolist())
        keep = [keep[i] for i in chosen]
    return keep
