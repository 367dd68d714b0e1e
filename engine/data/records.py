"""From a spec to the list of records (image path, label, split, annotation paths).

Four layouts: a labels ``table`` (CSV / TSV / Parquet), ``folders`` (one subfolder per class,
optionally below ``train`` / ``val`` / ``test`` folders), ``split_files`` (ids listed in one file
per split, e.g. VOC ``ImageSets``) and ``images`` (every image file under ``images_dir``, e.g. YOLO
detection data).  The last two take the label from the boxes (``label_from_boxes``; by default for
``split_files``: whether the image has a box of ``box_classes``).  Splits not given by the data are
drawn from each image's own id (:mod:`engine.data.splits`).
:func:`load_records` raises the first problem; :func:`scan_records` collects them all (check-data).
"""
from __future__ import annotations

import fnmatch
import glob
import logging
import random
import string
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .box_labels import box_label_classes, label_from_boxes
from .errors import DatasetError, Issues, Problem
from .files import side_file, special_file
from .ground_truth import read_ground_truth
from .paths import SymlinkRefused, confine, list_files
from .spec import SPLITS, DatasetSpec, inside_root
from .splits import assign_splits, groups_spanning_splits, read_split_files, read_splits_csv
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


def resolve_template(root: Path, template: str, fields: dict, where: str, follow: bool = False) -> list[Path]:
    """Paths for a template (a glob when it contains * ? [); refuses paths outside the root (see
    :func:`engine.data.paths.confine` for symbolic links inside it)."""
    if "{num" in template and "num" not in fields:
        raise DatasetError(f"{where}: id {fields['id']!r} is not an integer but the template {template!r} "
                           f"needs {{num}}")
    literal = "".join(lit for lit, _, _, _ in string.Formatter().parse(template))
    is_glob = any(c in literal for c in GLOB_CHARS)
    vals = {k: glob.escape(v) if is_glob and isinstance(v, str) else v for k, v in fields.items()}
    rel = template.format(**vals)
    paths = sorted(Path(p) for p in glob.glob(glob.escape(str(root)) + "/" + rel)) if is_glob else [root / rel]
    return [confine(p, root, follow, where, f"path for id {fields['id']!r}") for p in paths]


def template_example(root: Path, template: str, rec: "Record") -> str:
    """The path (or glob) a template gives for one record, for messages."""
    fields = template_fields(rec.image_id, rec.label_name, rec.split or "")
    try:
        return str(root / template.format(**fields))
    except (KeyError, ValueError, IndexError):
        return str(root / template)


def _table_rows(spec: DatasetSpec, root: Path, issues: Issues) -> list[_Row]:
    try:
        table = side_file(root, spec.labels, "labels table")  # may lie outside the root (the images may not)
    except DatasetError as exc:
        issues.error(*str(exc).split(": ", 1), fatal=True)
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
    base, files = _image_files(spec, root, issues)
    by_split = all(len(f.parts) >= 3 and f.parts[0] in SPLITS for f in files)
    out = []
    for f in files:
        parts = f.parts[1:] if by_split else f.parts
        if len(parts) < 2:
            issues.error(base / f, "image is not inside a class folder; skipped")
            continue
        out.append(_Row(f.as_posix(), parts[0], str(base / f), f.parts[0] if by_split else None))
    return out


def _image_files(spec: DatasetSpec, root: Path, issues: Issues) -> tuple[Path, list[PurePosixPath]]:
    """The image files under ``images_dir`` (relative, sorted), without the ``exclude`` patterns."""
    base = confine(root / spec.images_dir, root, spec.follow_symlinks, str(root), "images_dir")
    if not base.is_dir():
        issues.error(base, "image folder not found", fatal=True)
    files = []
    for p in list_files(base, root, spec.follow_symlinks):
        rel = p.relative_to(base).as_posix()
        if p.suffix.lower() in spec.extensions and not any(
                fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(p.name, pat) for pat in spec.exclude):
            files.append(PurePosixPath(rel))
    if not files:
        issues.error(base, f"no images found (extensions {list(spec.extensions)})", fatal=True)
    return base, files


def _image_rows(spec: DatasetSpec, root: Path, issues: Issues) -> list[_Row]:
    base, files = _image_files(spec, root, issues)
    return [_Row(f.as_posix(), "", str(base / f)) for f in files]


def _split_file_rows(spec: DatasetSpec, root: Path, issues: Issues) -> list[_Row]:
    ids = read_split_files(root, spec.split_files, issues)
    if not ids:
        issues.error(root / spec.split_files, "the split files list no images", fatal=True)
    return [_Row(i, "", f"{root / spec.split_files.format(split=s)}", s) for i, s in ids.items()]


def _classes(spec: DatasetSpec, labels: list[str]) -> tuple[str, ...]:
    if spec.label_from_boxes:
        return box_label_classes(spec)
    if spec.classes:
        return tuple(spec.classes)
    if spec.layout == "split_files":
        return ("negative", "positive")
    if spec.label_map:
        return tuple(dict.fromkeys(v for _, v in spec.label_map))
    return tuple(sorted(set(labels), key=_natural_key))


def _box_label(rec: Record, spec: DatasetSpec, classes: tuple[str, ...], issues: Issues) -> int | None:
    """The label of an image of a detection dataset, from its boxes (None: skipped, reported)."""
    try:
        if spec.label_from_boxes:
            y = label_from_boxes(rec, spec, classes)
            if y is None:
                issues.warn(rec.boxes_path or rec.image_path, "no box, so no class by label_from_boxes = "
                                                              "'largest'; image skipped", "note")
            return y
        return int(read_ground_truth(rec, spec).annotated)
    except DatasetError as exc:  # AnnotationError too; the message starts with the file
        file, _, reason = str(exc).partition(": ")
        issues.error(file, f"{reason}; the image cannot be labelled and is skipped")
        return None


def _source(spec: DatasetSpec, root: Path) -> Path:
    """The file or folder that lists the images (for messages)."""
    if spec.layout == "table":
        return (root / spec.labels).resolve()
    return (root / spec.images_dir).resolve() if spec.layout in ("folders", "images") else root / spec.split_files


def _read(spec: DatasetSpec, issues: Issues, check_files: bool = False) -> tuple[list[Record], tuple[str, ...]]:
    root = Path(spec.root).resolve()
    if not root.is_dir():
        issues.error(root, "dataset root not found", fatal=True)
    reader = {"table": _table_rows, "folders": _folder_rows, "split_files": _split_file_rows,
              "images": _image_rows}[spec.layout]
    try:
        rows = reader(spec, root, issues)
    except SymlinkRefused as exc:
        issues.error(*str(exc).split(": ", 1), fatal=True)
    src = _source(spec, root)
    if check_files:
        _most_rows_resolve(spec, root, rows, src, issues)
    lmap = dict(spec.label_map)
    by_boxes = spec.layout in ("split_files", "images")
    if not by_boxes:
        if lmap:
            unmapped = sorted({r.raw_label for r in rows} - set(lmap))
            if unmapped:
                issues.error(src, f"labels {unmapped} are not in label_map {sorted(lmap)}; "
                                  f"{sum(r.raw_label in unmapped for r in rows)} row(s) skipped")
                rows = [r for r in rows if r.raw_label in lmap]
    classes = _classes(spec, [lmap.get(r.raw_label, r.raw_label) for r in rows])
    if not by_boxes:
        unknown = sorted({lmap.get(r.raw_label, r.raw_label) for r in rows} - set(classes))
        if unknown:
            n = sum(lmap.get(r.raw_label, r.raw_label) in unknown for r in rows)
            issues.error(src, f"labels {unknown} are not among the configured classes {list(classes)}; "
                              f"{n} row(s) skipped")
            rows = [r for r in rows if lmap.get(r.raw_label, r.raw_label) not in unknown]

    if (spec.split_files and spec.layout != "split_files") or spec.splits_csv:
        if spec.splits_csv:
            csv_path = side_file(root, spec.splits_csv, "splits_csv")  # may lie outside the root
            by_file, listed_in = read_splits_csv(csv_path, issues), str(csv_path)
        else:
            by_file, listed_in = read_split_files(root, spec.split_files, issues), "split file"
        for r in rows:
            r.split = by_file.get(r.raw_id)
            if r.split is None:
                issues.error(r.where, f"image id {r.raw_id!r} is in no {listed_in}; skipped")
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
        # from each image's own id (or group) and the seed: no other file moves it
        groups = [r.group for r in rows] if spec.group_column else None
        for r, s in zip(rows, assign_splits([r.raw_id for r in rows], groups, spec.split_fractions,
                                            spec.split_seed)):
            r.split = s
    elif spec.group_column:
        for g, ss in groups_spanning_splits([r.group or r.raw_id for r in rows], [r.split for r in rows]).items():
            issues.error(src, f"group {g!r} spans the splits {ss}")

    records: list[Record] = []
    for r in rows:
        try:
            rec = _record(spec, root, r, lmap)
        except SymlinkRefused as exc:  # once for the dataset, not once per image
            issues.error(*str(exc).split(": ", 1), fatal=True)
        except DatasetError as exc:
            issues.error(r.where, str(exc).removeprefix(r.where + ": "))
            continue
        if by_boxes:
            y = _box_label(rec, spec, classes, issues)
            if y is None:
                continue
            rec.label, rec.label_name = y, classes[y]
        else:
            rec.label = classes.index(rec.label_name)
        records.append(rec)
    if not records:
        issues.error(src, "no usable images", fatal=True)
    _templates_match(spec, root, records, issues)
    odd = next(((r.image_path, why) for r in records if (why := special_file(r.image_path))), None) \
        if check_files else None
    if odd:  # opening a named pipe or a device can hang the run: refused, never read
        issues.error(odd[0], f"is {odd[1]}, not a regular file: images must be regular files", fatal=True)
    missing = [r.image_path for r in records if not r.image_path.is_file()] if check_files else []
    if len(missing) * 2 > len(records):
        issues.error(src, f"{len(missing)} of {len(records)} images listed do not exist (e.g. {missing[0]}); "
                          f"check root and image_template", fatal=True)
    return records, classes


def _templates_match(spec: DatasetSpec, root: Path, records: list[Record], issues: Issues):
    """A mask or box template that matches no file for any image is a mistake in the spec (fatal);
    no file for some images is a per-image matter."""
    for key, found in (("mask_template", lambda r: r.mask_path is not None and r.mask_path.is_file()),
                       ("boxes_template", lambda r: r.boxes_path is not None and r.boxes_path.is_file())):
        template = getattr(spec, key)
        if template and records and not any(found(r) for r in records):
            issues.error(spec.root, f"{key} {template!r} matches no file for any of the {len(records)} images "
                                    f"(e.g. tried {template_example(root, template, records[0])})", fatal=True)
    if spec.mask_template:
        masks = {m for r in records for m in (r.mask_path, *r.more_masks) if m is not None}
        both = [r.image_path for r in records if r.image_path in masks]
        if both:
            issues.error(spec.root, f"{len(both)} image file(s) are also mask files of the mask_template "
                                    f"{spec.mask_template!r} (e.g. {both[0]}): set exclude (e.g. exclude = "
                                    f"[\"*_mask*\"]) so the masks are not read as images", fatal=True)


SAMPLE_ROWS = 200


def _most_rows_resolve(spec: DatasetSpec, root: Path, rows: list[_Row], src, issues: Issues) -> None:
    """Stop at once when most of a seeded sample of rows name image files that do not exist (a wrong
    root or template, a garbage table): before a large table is split, resolved and published."""
    if spec.layout in ("folders", "images") or not rows or ("{split" in spec.image_template and any(r.split is None
                                                                                        for r in rows)):
        return
    sample = rows if len(rows) <= SAMPLE_ROWS else random.Random(0).sample(rows, SAMPLE_ROWS)
    missing = []
    for r in sample:
        try:
            paths = resolve_template(root, spec.image_template, template_fields(r.raw_id, r.raw_label, r.split or ""),
                                     r.where, spec.follow_symlinks)
        except DatasetError:  # a path escape or a bad id: reported for its row, with its own reason
            continue
        if not paths or not paths[0].is_file():
            missing.append(paths[0] if paths else f"{r.raw_id!r}")
    if len(missing) * 2 > len(sample):
        what = f"{len(missing)} of {len(sample)} sampled rows" if len(sample) < len(rows) else \
            f"{len(missing)} of {len(rows)} rows"
        issues.error(src, f"{what} name image files that do not exist (e.g. {missing[0]}); check root and "
                          f"image_template", fatal=True)


def _record(spec: DatasetSpec, root: Path, r: _Row, lmap: dict) -> Record:
    fields = template_fields(r.raw_id, r.raw_label, r.split or "")
    follow = spec.follow_symlinks
    if spec.layout in ("folders", "images"):
        img = confine(root / spec.images_dir / r.raw_id, root, follow, r.where)
    else:
        img = resolve_template(root, spec.image_template, fields, r.where, follow)[0]
    masks = resolve_template(root, spec.mask_template, fields, r.where, follow) if spec.mask_template else []
    boxes = None
    if spec.boxes_template:
        boxes = resolve_template(root, spec.boxes_template, fields, r.where, follow)[0]
    elif spec.boxes_file:
        boxes = inside_root(root, spec.boxes_file, "boxes_file", follow)
    return Record(r.raw_id, -1, r.split, img, masks[0] if masks else None, boxes, r.group,
                  lmap.get(r.raw_label, r.raw_label), tuple(masks[1:]))


def load_records(spec: DatasetSpec, check_files: bool = False) -> tuple[list[Record], tuple[str, ...]]:
    """Read the spec's image list; return the records and the class names (index = label).
    Raises :class:`DatasetError` (naming the file and the reason) at the first problem.

    ``check_files`` (a run, check-data): stop when most rows name image files that do not exist -- judged
    on a seeded sample of the rows first, so a large table of wrong paths stops at once."""
    return _read(spec, Issues(collect=False), check_files)


def scan_records(spec: DatasetSpec, check_files: bool = False) -> tuple[list[Record], tuple[str, ...], list[Problem]]:
    """Like :func:`load_records` but skips bad rows and returns every problem (for check-data)."""
    issues = Issues(collect=True)
    try:
        records, classes = _read(spec, issues, check_files)
    except DatasetError as exc:
        file, _, reason = str(exc).partition(": ")
        issues.items.append(Problem("error", file, reason or str(exc)))
        return [], (), issues.items
    return records, classes, issues.items
