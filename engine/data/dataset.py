"""Dataset loader: image folder + labels CSV + optional VOC boxes / value-coded masks.

A :class:`DatasetSpec` says where the files are; :func:`load_records` reads the labels table and
resolves every path (refusing paths outside the root); :class:`ImageDataset` yields
:class:`Sample` objects whose image, boxes and masks are aligned to the model's square input
(see :mod:`engine.data.transforms`).
"""
from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .annotations import AnnotationError, mask_region, read_mask, read_voc_boxes
from .transforms import box_from_mask, compute_geometry, rasterise_boxes, transform_image, transform_mask

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """A problem with a dataset; the message names the file and the reason."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's files are and how to read them.

    Templates are paths relative to ``root``; ``{id}`` is the id as written in the labels table,
    ``{num}`` the id as an integer (so ``{num:03d}.bmp`` turns id ``7`` into ``007.bmp``).
    ``label_column`` / ``id_column`` list accepted header names (tables differ in spelling).
    ``mask_regions`` maps a region name to the mask values that form it, e.g.
    ``(("mask", (128, 255)),)`` for a whole cell coded 128 cytoplasm / 255 nucleus.
    """

    name: str
    root: str
    labels: str
    image_template: str = "{id}"
    id_column: tuple[str, ...] = ("image", "image_id", "image ID", "id")
    label_column: tuple[str, ...] = ("label", "class", "class label")
    split_column: str | None = None
    classes: tuple[str, ...] | None = None
    mask_template: str | None = None
    mask_regions: tuple[tuple[str, tuple[int, ...]], ...] = ()
    boxes_template: str | None = None
    box_classes: tuple[str, ...] = ()
    box_from_mask: str | None = None  # name of a mask region to derive a 'box_from_mask' region from
    input_size: int = 224
    resize: str = "resize"
    split_seed: int = 0
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Record:
    image_id: str
    label: int
    split: str
    image_path: Path
    mask_path: Path | None = None
    boxes_path: Path | None = None


@dataclass
class Sample:
    image: torch.Tensor  # (3, S, S) float in [0, 1], not normalised
    label: int
    image_id: str
    regions: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (S, S) bool
    size: tuple[int, int] = (0, 0)  # original (width, height)


def _pick_column(header: list[str], candidates: tuple[str, ...] | str, path: Path, what: str) -> str:
    cands = (candidates,) if isinstance(candidates, str) else candidates
    norm = {h.strip().lower(): h for h in header}
    for c in cands:
        if c.strip().lower() in norm:
            return norm[c.strip().lower()]
    raise DatasetError(f"{path}: no {what} column; looked for {list(cands)}, found {header}")


def _resolve(root: Path, template: str, raw_id: str, path_for_error: Path) -> Path:
    fields = {"id": raw_id}
    try:
        fields["num"] = int(raw_id)
    except ValueError:
        if "{num" in template:
            raise DatasetError(f"{path_for_error}: id {raw_id!r} is not an integer but the template "
                               f"{template!r} needs {{num}}") from None
    p = (root / template.format(**fields)).resolve()
    if not p.is_relative_to(root):
        raise DatasetError(f"{path_for_error}: path {p} for id {raw_id!r} lies outside the dataset root {root}")
    return p


def _stratified_split(labels: list[int], fractions, seed: int) -> list[str]:
    """Seeded per-class split; a class with fewer than 3 images goes to train only."""
    rng = np.random.default_rng(seed)
    out = [""] * len(labels)
    for c in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == c]
        rng.shuffle(idx)
        n = len(idx)
        if n < 3:
            n_val = n_test = 0
        else:
            n_val = max(1, round(n * fractions[1]))
            n_test = max(1, round(n * fractions[2]))
        for k, i in enumerate(idx):
            out[i] = "test" if k < n_test else "val" if k < n_test + n_val else "train"
    return out


def load_records(spec: DatasetSpec) -> tuple[list[Record], tuple[str, ...]]:
    """Read the labels table; return the records and the class names (index = label)."""
    root = Path(spec.root).resolve()
    table = root / spec.labels
    if not table.is_relative_to(root):
        raise DatasetError(f"{table}: labels table lies outside the dataset root {root}")
    if not table.is_file():
        raise DatasetError(f"{table}: labels table not found")
    with open(table, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise DatasetError(f"{table}: empty labels table")
        rows = [r for r in reader if any(c.strip() for c in r)]
    id_col = header.index(_pick_column(header, spec.id_column, table, "image id"))
    lab_col = header.index(_pick_column(header, spec.label_column, table, "label"))
    split_col = header.index(_pick_column(header, spec.split_column, table, "split")) if spec.split_column else None
    if not rows:
        raise DatasetError(f"{table}: no images listed")

    raw_labels = []
    for n, r in enumerate(rows, start=2):
        if len(r) <= max(id_col, lab_col) or not r[id_col].strip() or not r[lab_col].strip():
            raise DatasetError(f"{table}: line {n} has a missing image id or label")
        raw_labels.append(r[lab_col].strip())
    classes = tuple(spec.classes) if spec.classes else tuple(sorted(set(raw_labels), key=_natural_key))
    unknown = sorted(set(raw_labels) - set(classes))
    if unknown:
        raise DatasetError(f"{table}: labels {unknown} are not among the configured classes {list(classes)}")
    labels = [classes.index(v) for v in raw_labels]

    if split_col is not None:
        splits = [r[split_col].strip() for r in rows]
        bad = sorted(set(splits) - set(SPLITS))
        if bad:
            raise DatasetError(f"{table}: split values {bad} are not among {list(SPLITS)}")
    else:
        splits = _stratified_split(labels, spec.split_fractions, spec.split_seed)

    seen: set[str] = set()
    records = []
    for r, y, s in zip(rows, labels, splits):
        raw_id = r[id_col].strip()
        if raw_id in seen:
            raise DatasetError(f"{table}: image id {raw_id!r} is listed twice")
        seen.add(raw_id)
        img = _resolve(root, spec.image_template, raw_id, table)
        mask = _resolve(root, spec.mask_template, raw_id, table) if spec.mask_template else None
        boxes = _resolve(root, spec.boxes_template, raw_id, table) if spec.boxes_template else None
        records.append(Record(raw_id, y, s, img, mask, boxes))
    return records, classes


def _natural_key(s: str):
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def read_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise DatasetError(f"{path}: image file not found")
    try:
        im = Image.open(path)
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc})") from None
    return im


def load_sample(rec: Record, spec: DatasetSpec) -> Sample:
    """Read one record's image and annotations, aligned to ``spec.input_size``."""
    im = read_image(rec.image_path)
    geo = compute_geometry(im.width, im.height, spec.input_size, spec.resize)
    image = torch.from_numpy(transform_image(im, geo)).permute(2, 0, 1).contiguous()
    regions: dict[str, torch.Tensor] = {}
    try:
        if rec.mask_path is not None:
            if not rec.mask_path.is_file():
                raise DatasetError(f"{rec.mask_path}: mask file not found")
            raw = read_mask(rec.mask_path, (im.width, im.height))
            for name, values in spec.mask_regions:
                src = mask_region(raw, values)
                regions[name] = torch.from_numpy(transform_mask(src, geo))
                if spec.box_from_mask == name:
                    box = geo.map_boxes(box_from_mask(src))
                    regions["box_from_mask"] = torch.from_numpy(rasterise_boxes(box, spec.input_size))
        if rec.boxes_path is not None:
            if not rec.boxes_path.is_file():
                raise DatasetError(f"{rec.boxes_path}: box annotation file not found")
            boxes = geo.map_boxes(read_voc_boxes(rec.boxes_path, spec.box_classes))
            regions["box"] = torch.from_numpy(rasterise_boxes(boxes, spec.input_size))
    except AnnotationError as exc:
        raise DatasetError(str(exc)) from None
    return Sample(image, rec.label, rec.image_id, regions, (im.width, im.height))


class ImageDataset(torch.utils.data.Dataset):
    """Samples of one split (or all), optionally cached in memory after the first read."""

    def __init__(self, spec: DatasetSpec, split: str | None = None, cache: bool = True,
                 records: list[Record] | None = None, classes: tuple[str, ...] | None = None):
        if records is None:
            records, classes = load_records(spec)
        self.spec = spec
        self.classes = classes
        self.records = [r for r in records if split is None or r.split == split]
        self._cache: dict[int, Sample] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Sample:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        s = load_sample(self.records[i], self.spec)
        if self._cache is not None:
            self._cache[i] = s
        return s

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]


def collate_samples(batch: list[Sample]) -> dict:
    """Stack samples; a region missing from a sample becomes an all-False mask (not scored)."""
    size = batch[0].image.shape[-1]
    names = sorted({n for s in batch for n in s.regions})
    empty = torch.zeros(size, size, dtype=torch.bool)
    return {
        "image": torch.stack([s.image for s in batch]),
        "label": torch.tensor([s.label for s in batch], dtype=torch.long),
        "image_id": [s.image_id for s in batch],
        "regions": {n: torch.stack([s.regions.get(n, empty) for s in batch]) for n in names},
    }


def fingerprint(records: list[Record], spec: DatasetSpec) -> str:
    """Dataset fingerprint: spec (minus root), labels-table content, each file's relative path and
    size, and the content of text annotations.  A changed dataset gets a new fingerprint."""
    root = Path(spec.root).resolve()
    h = hashlib.sha256()
    spec_d = spec.to_dict()
    spec_d.pop("root")  # the same files moved elsewhere are the same dataset
    h.update(repr(sorted(spec_d.items())).encode())
    h.update(hashlib.sha256((root / spec.labels).read_bytes()).digest())
    for r in records:
        for p in (r.image_path, r.mask_path, r.boxes_path):
            if p is None:
                continue
            h.update(str(p.relative_to(root)).encode())
            h.update(str(p.stat().st_size if p.exists() else -1).encode())
            if p.suffix.lower() in (".xml", ".json", ".txt"):
                h.update(hashlib.sha256(p.read_bytes()).digest() if p.exists() else b"missing")
    return h.hexdigest()[:16]
