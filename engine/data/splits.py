"""Train / val / test assignment: stratified and seeded, grouped by patient, or read from split files;
and the seeded choice of the images that are scored."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .annotations import AnnotationError
from .errors import Issues
from .ground_truth import read_ground_truth
from .spec import SPLITS


def stratified_split(labels: list[int], fractions, seed: int) -> list[str]:
    """Seeded per-class split; a class with fewer than 3 items goes to train only."""
    rng = np.random.default_rng(seed)
    out = [""] * len(labels)
    for c in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == c]
        rng.shuffle(idx)
        n = len(idx)
        if n < 3:
            n_val = n_test = 0
        else:
            n_val = max(1, round(n * fractions[1])) if fractions[1] > 0 else 0
            n_test = max(1, round(n * fractions[2])) if fractions[2] > 0 else 0
        for k, i in enumerate(idx):
            out[i] = "test" if k < n_test else "val" if k < n_test + n_val else "train"
    return out


def grouped_split(labels: list[int], groups: list[str], fractions, seed: int) -> list[str]:
    """Stratified split of whole groups (patients): a group's stratum is its most common label, and
    every member of a group goes to the group's split, so no group spans two splits."""
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    names = sorted(members)
    group_label = [min(Counter(labels[i] for i in members[g]).most_common(),
                       key=lambda kv: (-kv[1], kv[0]))[0] for g in names]
    group_split = stratified_split(group_label, fractions, seed)
    out = [""] * len(labels)
    for g, s in zip(names, group_split):
        for i in members[g]:
            out[i] = s
    return out


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


def select_scored(records: list, spec, classes: tuple[str, ...] | None = None) -> list:
    """The records whose explanations are scored, in record order.

    Keeps records of ``spec.score_split`` ("all": every split) whose class is in
    ``spec.score_classes`` (empty: every class; names as in ``classes`` / ``Record.label_name``);
    with ``spec.score_only_annotated`` only those with a box or a non-empty mask region; then, with
    ``spec.score_limit``, a seeded sample (``spec.score_seed``) of that many.  Deterministic for a seed.
    Records whose annotations cannot be read count as not annotated (check-data reports them)."""

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
