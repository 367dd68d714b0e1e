"""From a spec to the list of records (image path, label, split, annotation paths).

Three layouts: a labels ``table`` (CSV / TSV / Parquet), ``folders`` (one subfolder per class,
optionally below ``train`` / ``val`` / ``test`` folders) and ``split_files`` (ids listed in one file
per split, e.g. VOC ``ImageSets``; the label says whether the image has a box of ``box_classes``).
:func:`load_records` raises the first problem; :func:`scan_records` collects them all (check-data).
"""
from __future__ import annotations

import fnmatch
import glob
import logging
import string
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import DatasetError, Issues, Problem
from .ground_truth import read_ground_truth
from .spec import SPLITS, DatasetSpec
from .splits import grouped_split, groups_spanning_splits, read_split_files, stratified_split
from .tables import pick_column, read_table

log = logging.getLogger(__name__)
GLOB_CHARS = "*?["


@dataclass
class Record:
    image_id: str
    label: int
    split: str
    image_path: Path
    mask_path: Path | None = None
    boxes_path: Path | None = None
    group: str | None = None  # patient / group id (group_column)
    label_name: str = ""
    more_masks: tuple[Path, ...] = ()  # further mask files of the image (a glob mask_template): union


@dataclass
class _Row:
    raw_id: str
    raw_label: str
    where: str  # "file: line n" for messages
    split: str | None = None
    group: str | None = None


def _natural_key(s: str):
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def template_fields(raw_id: str, raw_label: str, split: str) -> dict:
    p = PurePosixPath(raw_id)
    fields = {"id": raw_id, "stem": p.stem, "dir": str(p.parent),
              "label": raw_label, "split": split}
    try:
        fields["num"] = int(raw_id)
    except ValueError:
        pass
    return fields


def resolve_template(root: Path, template: str, fields: dict, where: str) -> list[Path]:
    """Paths for a template (a glob when it contains * ? [); refuses paths outside the root."""
    if "{num" in template and "num" not in fields:
        raise DatasetError(f"{where}: id {fields['id']!r} is not an integer but the template {template!r} "
                           f"needs {{num}}")
    literal = "".join(lit for lit, _, _, _ in string.Formatter().parse(template))
    is_glob = any(c in literal for c in GLOB_CHARS)
    vals = {k: glob.escape(v) if is_glob and isinstance(v, str) else v for k, v in fields.items()}
    rel = template.format(**vals)
    paths = sorted(Path(p) for p in glob.glob(glob.escape(str(root)) + "/" + rel)) if is_glob else [root / rel]
    out = []
    for p in paths:
        p = p.resolve()
        if not p.is_relative_to(root):
            raise DatasetError(f"{where}: path {p} for id {fields['id']!r} lies outside the dataset root {root}")
        out.append(p)
    return out


def _table_rows(spec: DatasetSpec, root: Path, issues: Issues) -> list[_Row]:
    table = (root / spec.labels).resolve()
    if not table.is_relative_to(root):
        issues.error(table, f"labels table lies outside the dataset root {root}", fatal=True)
    if not table.is_file():
        issues.error(table, "labels table not found", fatal=True)
    header, rows = read_table(table)
    id_col = pick_column(header, spec.id_column, table, "image id")
    lab_col = pick_column(header, spec.label_column, table, "label")
    split_col = pick_column(header, spec.split_column, table, "split") if spec.split_column else None
    group_col = pick_column(header, spec.group_column, table, "group") if spec.group_column else None
    if not rows:
        issues.error(table, "no images listed", fatal=True)
    out = []
    for n, r in enumerate(rows, start=2):
        cell = (lambda c: r[c].strip() if c is not None and c < len(r) else "")
        if not cell(id_col) or not cell(lab_col):
            issues.error(table, f"line {n} has a missing image id or label")
            continue
        out.append(_Row(cell(id_col), cell(lab_col), f"{table}: line {n}",
                        cell(split_col) if split_col is not None else None,
                        cell(group_col) if group_col is not None else None))
    return out


def _folder_rows(spec: DatasetSpec, root: Path, issues: Issues) -> list[_Row]:
    base = (root / spec.images_dir).resolve()
    if not base.is_dir():
        issues.error(base, "image folder not found", fatal=True)
    files = []
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base).as_posix()
        if p.is_file() and p.suffix.lower() in spec.extensions and not any(
                fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(p.name, pat) for pat in spec.exclude):
            files.append(PurePosixPath(rel))
    if not files:
        issues.error(base, f"no images found (extensions {list(spec.extensions)})", fatal=True)
    by_split = all(len(f.parts) >= 3 and f.parts[0] in SPLITS for f in files)
    out = []
    for f in files:
        parts = f.parts[1:] if by_split else f.parts
        if len(parts) < 2:
            issues.error(base / f, "image is not inside a class folder; skipped")
            continue
        out.append(_Row(f.as_posix(), parts[0], str(base / f), f.parts[0] if by_split else None))
    return out


def _split_file_rows(spec: DatasetSpec, root: Path, issues: Issues) -> list[_Row]:
    ids = read_split_files(root, spec.split_files, issues)
    if not ids:
        issues.error(root / spec.split_files, "the split files list no images", fatal=True)
    return [_Row(i, "", f"{root / spec.split_files.format(split=s)}", s) for i, s in ids.items()]


def _classes(spec: DatasetSpec, labels: list[str]) -> tuple[str, ...]:
    if spec.classes:
        return tuple(spec.classes)
    if spec.layout == "split_files":
        return ("negative", "positive")
    if spec.label_map:
        return tuple(dict.fromkeys(v for _, v in spec.label_map))
    return tuple(sorted(set(labels), key=_natural_key))


def _annotated_label(rec: Record, spec: DatasetSpec, issues: Issues) -> int | None:
    try:
        return int(read_ground_truth(rec, spec).annotated)
    except DatasetError as exc:  # AnnotationError too; the message starts with the file
        file, _, reason = str(exc).partition(": ")
        issues.error(file, f"{reason}; the image cannot be labelled and is skipped")
        return None


def _source(spec: DatasetSpec, root: Path) -> Path:
    """The file or folder that lists the images (for messages)."""
    if spec.layout == "table":
        return (root / spec.labels).resolve()
    return (root / spec.images_dir).resolve() if spec.layout == "folders" else root / spec.split_files


def _read(spec: DatasetSpec, issues: Issues) -> tuple[list[Record], tuple[str, ...]]:
    root = Path(spec.root).resolve()
    if not root.is_dir():
        issues.error(root, "dataset root not found", fatal=True)
    reader = {"table": _table_rows, "folders": _folder_rows, "split_files": _split_file_rows}[spec.layout]
    rows = reader(spec, root, issues)
    src = _source(spec, root)
    lmap = dict(spec.label_map)
    if spec.layout != "split_files":
        if lmap:
            unmapped = sorted({r.raw_label for r in rows} - set(lmap))
            if unmapped:
                issues.error(src, f"labels {unmapped} are not in label_map {sorted(lmap)}; "
                                  f"{sum(r.raw_label in unmapped for r in rows)} row(s) skipped")
                rows = [r for r in rows if r.raw_label in lmap]
    classes = _classes(spec, [lmap.get(r.raw_label, r.raw_label) for r in rows])
    if spec.layout != "split_files":
        unknown = sorted({lmap.get(r.raw_label, r.raw_label) for r in rows} - set(classes))
        if unknown:
            n = sum(lmap.get(r.raw_label, r.raw_label) in unknown for r in rows)
            issues.error(src, f"labels {unknown} are not among the configured classes {list(classes)}; "
                              f"{n} row(s) skipped")
            rows = [r for r in rows if lmap.get(r.raw_label, r.raw_label) not in unknown]

    if spec.split_files and spec.layout != "split_files":
        by_file = read_split_files(root, spec.split_files, issues)
        for r in rows:
            r.split = by_file.get(r.raw_id)
            if r.split is None:
                issues.error(r.where, f"image id {r.raw_id!r} is in no split file; skipped")
        rows = [r for r in rows if r.split is not None]
    elif spec.split_column:
        bad = sorted({r.split for r in rows} - set(SPLITS))
        if bad:
            issues.error(src, f"split values {bad} are not among {list(SPLITS)}; "
                              f"{sum(r.split in bad for r in rows)} row(s) skipped")
            rows = [r for r in rows if r.split in SPLITS]

    seen: set[str] = set()
    unique = []
    for r in rows:
        if r.raw_id in seen:
            issues.error(src, f"image id {r.raw_id!r} is listed twice ({r.where.rsplit(': ', 1)[-1]}); "
                              f"the repeat is skipped")
            continue
        seen.add(r.raw_id)
        unique.append(r)
    rows = unique
    if rows and any(r.split is None for r in rows):
        labels = [classes.index(lmap.get(r.raw_label, r.raw_label)) for r in rows]
        if spec.group_column:
            splits = grouped_split(labels, [r.group or r.raw_id for r in rows], spec.split_fractions, spec.split_seed)
        else:
            splits = stratified_split(labels, spec.split_fractions, spec.split_seed)
        for r, s in zip(rows, splits):
            r.split = s
    elif spec.group_column:
        for g, ss in groups_spanning_splits([r.group or r.raw_id for r in rows], [r.split for r in rows]).items():
            issues.error(src, f"group {g!r} spans the splits {ss}")

    records: list[Record] = []
    for r in rows:
        try:
            rec = _record(spec, root, r, lmap)
        except DatasetError as exc:
            issues.error(r.where, str(exc).removeprefix(r.where + ": "))
            continue
        if spec.layout == "split_files":
            y = _annotated_label(rec, spec, issues)
            if y is None:
                continue
            rec.label, rec.label_name = y, classes[y]
        else:
            rec.label = classes.index(rec.label_name)
        records.append(rec)
    if not records:
        issues.error(src, "no usable images", fatal=True)
    return records, classes


def _record(spec: DatasetSpec, root: Path, r: _Row, lmap: dict) -> Record:
    fields = template_fields(r.raw_id, r.raw_label, r.split or "")
    if spec.layout == "folders":
        img = (root / spec.images_dir / r.raw_id).resolve()
        if not img.is_relative_to(root):
            raise DatasetError(f"{r.where}: path {img} lies outside the dataset root {root}")
    else:
        img = resolve_template(root, spec.image_template, fields, r.where)[0]
    masks = resolve_template(root, spec.mask_template, fields, r.where) if spec.mask_template else []
    boxes = None
    if spec.boxes_template:
        boxes = resolve_template(root, spec.boxes_template, fields, r.where)[0]
    elif spec.boxes_file:
        boxes = (root / spec.boxes_file).resolve()
    return Record(r.raw_id, -1, r.split, img, masks[0] if masks else None, boxes, r.group,
                  lmap.get(r.raw_label, r.raw_label), tuple(masks[1:]))


def load_records(spec: DatasetSpec) -> tuple[list[Record], tuple[str, ...]]:
    """Read the spec's image list; return the records and the class names (index = label).
    Raises :class:`DatasetError` (naming the file and the reason) at the first problem."""
    return _read(spec, Issues(collect=False))


def scan_records(spec: DatasetSpec) -> tuple[list[Record], tuple[str, ...], list[Problem]]:
    """Like :func:`load_records` but skips bad rows and returns every problem (for check-data)."""
    issues = Issues(collect=True)
    try:
        records, classes = _read(spec, issues)
    except DatasetError as exc:
        file, _, reason = str(exc).partition(": ")
        issues.items.append(Problem("error", file, reason or str(exc)))
        return [], (), issues.items
    return records, classes, issues.items
