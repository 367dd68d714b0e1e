"""check-data: validate a dataset spec against its files and report every problem.

:func:`check_dataset` reads every image and annotation once and returns a :class:`DatasetReport`
(counts per class and split, images with / without annotations, the scored subset, and every
problem with its file and reason).  :func:`check_data_command` does this for each dataset of a TOML
file and prints the reports; it returns 0 when nothing was found, 1 when problems were found
(``fail_on="error"``: only errors count), 2 when the config itself cannot be read.
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .boxfiles import box_table
from .coco import coco_index
from .dataset import read_image
from .errors import DatasetError, Problem
from .ground_truth import read_ground_truth
from .images_io import extension_mismatch
from .records import scan_records
from .shortcut import ShortcutResult, dataset_shortcut, image_metadata
from .spec import SPLITS, DatasetSpec, inside_root, load_dataset_config
from .splits import select_scored, write_splits_csv


@dataclass
class DatasetReport:
    spec: DatasetSpec
    classes: tuple[str, ...] = ()
    n_images: int = 0
    counts: dict = field(default_factory=dict)  # (class name, split) -> n
    annotated: int = 0
    unannotated: int = 0
    unreadable: int = 0  # images that cannot be read
    bad_annotations: int = 0  # images whose annotations cannot be read
    scored: int = 0
    problems: list[Problem] = field(default_factory=list)
    records: list = field(default_factory=list, repr=False)
    shortcut: ShortcutResult | None = None  # metadata alone predicting the label (engine/data/shortcut.py)

    def count(self, severity: str) -> int:
        return sum(p.severity == severity for p in self.problems)

    def failed(self, fail_on: str = "warning") -> bool:
        levels = ("error",) if fail_on == "error" else ("error", "warning")
        return any(p.severity in levels for p in self.problems)

    def format(self) -> str:
        s = self.spec
        lines = [f"dataset {s.name!r}: {self.n_images} images, {len(self.classes)} classes "
                 f"(layout {s.layout}, root {s.root})"]
        if self.classes:
            w = max(8, *(len(c) for c in self.classes)) + 2
            lines.append("  " + "class".ljust(w) + "".join(f"{x:>7}" for x in (*SPLITS, "total")))
            for c in (*self.classes, "total"):
                n = [sum(v for (cc, sp), v in self.counts.items() if (c == "total" or cc == c) and sp == x)
                     for x in SPLITS]
                lines.append("  " + c.ljust(w) + "".join(f"{x:>7}" for x in (*n, sum(n))))
        lines.append(f"  with annotations: {self.annotated}; without: {self.unannotated}"
                     + (f"; unreadable images: {self.unreadable}" if self.unreadable else "")
                     + (f"; unreadable annotations: {self.bad_annotations}" if self.bad_annotations else ""))
        lim = f", limit {s.score_limit} (seed {s.score_seed})" if s.score_limit else ""
        cls = ", ".join(s.score_classes) if s.score_classes else "all classes"
        lines.append(f"  scored: {self.scored} images (split {s.score_split}, {cls}"
                     f"{', annotated only' if s.score_only_annotated else ''}{lim})")
        if self.shortcut is not None:
            lines.append(f"  shortcut check: {self.shortcut.line()}")
        lines.append(f"  problems: {self.count('error')} errors, {self.count('warning')} warnings, "
                     f"{self.count('note')} notes")
        order = {"error": 0, "warning": 1, "note": 2}
        for p in sorted(self.problems, key=lambda p: order[p.severity]):
            lines.append(f"  {p.severity:<7} {p.file}: {p.reason}")
        return "\n".join(lines)


def _split_message(msg: str) -> tuple[str, str]:
    file, sep, reason = msg.partition(": ")
    return (file, reason) if sep else ("", msg)


_READ_ERRORS = (OSError, ValueError, RuntimeError, IndexError, KeyError, TypeError)  # DatasetError is a ValueError


def _error(exc: Exception, path) -> Problem:
    if isinstance(exc, DatasetError):  # AnnotationError too: the message starts with the file
        return Problem("error", *_split_message(str(exc)))
    return Problem("error", path, f"cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())})")


REPEATS_LISTED = 10  # problems of one kind listed one by one; more become one summary line
_KINDS = ("mask has unexpected values",)


def summarise_repeats(problems: list[Problem]) -> list[Problem]:
    """More than ``REPEATS_LISTED`` problems of one kind and severity (e.g. a mask value outside
    ``mask_regions`` in hundreds of files) become one line: how many files, and the first one."""
    groups: dict[tuple, list[Problem]] = {}
    for p in problems:
        kind = next((k for k in _KINDS if p.reason.startswith(k)), None)
        if kind:
            groups.setdefault((p.severity, kind), []).append(p)
    out = []
    for p in problems:
        kind = next((k for k in _KINDS if p.reason.startswith(k)), None)
        same = groups.get((p.severity, kind), [])
        if kind is None or len(same) <= REPEATS_LISTED:
            out.append(p)
        elif p is same[0]:
            out.append(Problem(p.severity, p.file, f"{p.reason} -- and {len(same) - 1} more mask files like it "
                                                   f"(listed once)"))
    return out


def _listed(p, used) -> bool:
    """``p`` is a record's file: as written (a path through a followed symlink is kept lexical) or resolved."""
    if p in used:
        return True
    try:
        return p.resolve() in used
    except (RuntimeError, OSError):  # a symbolic link loop is no record's file
        return False


def _unlisted(records, report: DatasetReport):
    """Image files beside the listed ones (same folder, same extension) that no record uses."""
    used = {r.image_path for r in records} | {r.mask_path for r in records} | \
        {m for r in records for m in r.more_masks}
    folders = Counter((r.image_path.parent, r.image_path.suffix.lower()) for r in records)
    for folder, suffix in folders:
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() == suffix and p.is_file() and not _listed(p, used):
                report.problems.append(Problem("warning", p, "image file is in the dataset folder but not listed "
                                                             "(missing row?); not used"))


def _shared_annotations(spec: DatasetSpec, records, report: DatasetReport):
    if not spec.boxes_file:
        return
    try:
        path = inside_root(spec.root, spec.boxes_file, "boxes_file", spec.follow_symlinks)
        if spec.boxes_format == "csv":
            tbl = box_table(path, spec)
            probs = list(tbl.problems)
            keys = {k for r in records for k in (r.image_id, r.image_path.name, r.image_path.stem)}
            orphans = sorted(set(tbl.boxes) - keys)
            if orphans:
                probs.append(f"{path}: boxes for {len(orphans)} image id(s) that are not in the dataset, "
                             f"e.g. {orphans[:5]}")
        else:
            probs = list(coco_index(path).problems)
    except DatasetError as exc:
        probs = [str(exc)]
    for m in probs:
        report.problems.append(Problem("warning", *_split_message(m)))


def check_dataset(spec: DatasetSpec) -> DatasetReport:
    """Read every image and annotation of ``spec``; count, and collect every problem."""
    records, classes, problems = scan_records(spec, check_files=True)
    report = DatasetReport(spec, classes, len(records), problems=list(problems), records=records)
    report.counts = dict(Counter((classes[r.label], r.split) for r in records))
    _shared_annotations(spec, records, report)
    metadata = {}
    for r in records:
        size = None
        try:
            arr = read_image(r.image_path, spec)
            size = (arr.shape[1], arr.shape[0])
            metadata[r.image_id] = image_metadata(r.image_path, pixels=arr)
            note = extension_mismatch(r.image_path)
            if note:
                report.problems.append(Problem("warning", r.image_path, note))
        except _READ_ERRORS as exc:
            report.unreadable += 1
            report.problems.append(_error(exc, r.image_path))
        try:
            gt = read_ground_truth(r, spec, size)
        except _READ_ERRORS as exc:
            report.problems.append(_error(exc, r.boxes_path or r.mask_path or r.image_path))
            report.bad_annotations += 1
            continue
        for m in gt.problems:
            report.problems.append(Problem("warning", *_split_message(m)))
        for m in gt.notes:
            report.problems.append(Problem("note", *_split_message(m)))
        if spec.mask_template and r.mask_path is None:
            report.problems.append(Problem("note", r.image_path, f"no file matches mask_template "
                                                                 f"{spec.mask_template!r}: no mask region"))
        if gt.annotated:
            report.annotated += 1
        elif size is not None:
            report.unannotated += 1
    report.problems = summarise_repeats(report.problems)
    if records and spec.layout != "folders":
        _unlisted(records, report)
    _class_notes(report, spec)
    unknown = sorted(set(spec.score_classes) - set(classes))
    if records and unknown:
        report.problems.append(Problem("error", spec.root, f"score_classes {unknown} are not among the classes "
                                                           f"{list(classes)}"))
    if records:
        report.shortcut = dataset_shortcut(spec, records, classes, metadata)
        if report.shortcut.flagged:
            report.problems.append(Problem("warning", spec.root, report.shortcut.line()))
    report.scored = len(select_scored(records, spec, classes)) if records else 0
    if records and report.scored == 0:
        report.problems.append(Problem("warning", spec.root, "no image is scored with these score_* settings"))
    return report


def _class_notes(report: DatasetReport, spec: DatasetSpec):
    per_class = Counter(c for (c, _), v in report.counts.items() for _ in range(v))
    present = [c for c in report.classes if per_class[c]]
    if report.n_images and len(present) == 1:
        report.problems.append(Problem("warning", spec.root, f"only one class ({present[0]!r}) has images: "
                                                             "a classifier cannot be trained on it"))
    for c in report.classes:
        n = per_class[c]
        if n == 0 and report.n_images:
            report.problems.append(Problem("note", spec.root, f"class {c!r} has no images"))
            continue
        missing = [sp for sp in ("val", "test") if not report.counts.get((c, sp))]
        if n and missing:
            report.problems.append(Problem("note", spec.root, f"class {c!r} has {n} image(s), none in "
                                                              f"{' or '.join(missing)}"))


def splits_path(splits_out: str | Path, name: str, n_datasets: int) -> Path:
    """Where ``--splits-out FILE.csv`` writes a dataset's split: FILE.csv itself for one dataset,
    FILE_<name>.csv for each of several."""
    p = Path(splits_out)
    return p if n_datasets == 1 else p.with_name(f"{p.stem}_{name}{p.suffix or '.csv'}")


def report_datasets(specs: list[DatasetSpec], fail_on: str = "warning", out=None,
                    splits_out: str | Path | None = None, errors: list[str] = ()) -> int:
    """Check each spec, print its report (and write its split with ``splits_out``); 0 or 1.
    ``errors``: problems found outside the datasets' files (one line each, printed first)."""
    out = out or sys.stdout
    for e in errors:
        print(f"error   {e}", file=out)
    failed = bool(errors)
    for spec in specs:
        report = check_dataset(spec)
        print(report.format(), file=out)
        failed |= report.failed(fail_on)
        if splits_out and report.records:
            dest = splits_path(splits_out, spec.name, len(specs))
            try:
                n = write_splits_csv(report.records, report.classes, dest)
            except OSError as exc:
                print(f"error   {dest}: cannot write the splits ({exc.strerror or exc})", file=out)
                failed = True
                continue
            print(f"  splits of {n} images written to {dest} (image_id, label, group, split)", file=out)
    print("check-data: " + ("problems found" if failed else "no problems found"), file=out)
    return 1 if failed else 0


def check_data_command(config_path: str, fail_on: str = "warning", out=None,
                       splits_out: str | Path | None = None) -> int:
    """Validate every dataset of a TOML file (``[[datasets]]`` blocks or one ``[dataset]`` table) and
    print a report per dataset.  Returns 0 (no problems), 1 (problems found) or 2 (bad config)."""
    out = out or sys.stdout
    try:
        specs = load_dataset_config(config_path)
    except DatasetError as exc:
        print(f"error   {exc}", file=out)
        return 2
    return report_datasets(specs, fail_on, out, splits_out)
