"""Dataset loader: the records of a :class:`DatasetSpec` as aligned samples.

:func:`load_records` (:mod:`engine.data.records`) lists the images and resolves every path
(refusing paths outside the root); :class:`ImageDataset` yields :class:`Sample` objects whose image,
boxes and masks are aligned to the model's square input (see :mod:`engine.data.transforms`).
Images are read by :mod:`engine.data.images_io` and annotations by :mod:`engine.data.ground_truth`.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .annotations import AnnotationError
from .errors import DatasetError
from .ground_truth import read_ground_truth
from .images_io import read_image as _read_array
from .records import Record, load_records, scan_records
from .spec import SPLITS, DatasetSpec, SpecError, load_dataset_config
from .regions import build_regions
from .transforms import compute_geometry, transform_image

log = logging.getLogger(__name__)

__all__ = ["SPLITS", "DatasetError", "DatasetSpec", "ImageDataset", "Record", "Sample", "SpecError",
           "collate_samples", "fingerprint", "load_dataset_config", "load_records", "load_sample", "read_image",
           "scan_records"]


@dataclass
class Sample:
    image: torch.Tensor  # (3, S, S) float in [0, 1], not normalised
    label: int
    image_id: str
    regions: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (S, S) bool
    size: tuple[int, int] = (0, 0)  # original (width, height)


def read_image(path: Path, spec: DatasetSpec | None = None):
    """(H, W, 3) array of an image file (uint8 for 8-bit sources, float32 in [0, 1] otherwise)."""
    if spec is None:
        return _read_array(Path(path))
    return _read_array(Path(path), alpha=spec.alpha, intensity=spec.intensity, max_pixels=spec.max_pixels)


def load_sample(rec: Record, spec: DatasetSpec) -> Sample:
    """Read one record's image and annotations, aligned to ``spec.input_size``.

    Raises :class:`DatasetError` naming the file and the reason when the image or an annotation
    cannot be used; handled annotation problems (degenerate boxes dropped, boxes clipped, stray mask
    values) are logged at debug level and reported by check-data."""
    try:
        return _load_sample(rec, spec)
    except DatasetError:
        raise
    except (OSError, ValueError, RuntimeError, IndexError, KeyError, TypeError) as exc:
        # a reader failed in a way it did not anticipate: still one line naming the image
        raise DatasetError(f"{rec.image_path}: cannot be loaded ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())})") from exc


def _load_sample(rec: Record, spec: DatasetSpec) -> Sample:
    arr = read_image(rec.image_path, spec)
    h, w = arr.shape[:2]
    geo = compute_geometry(w, h, spec.input_size, spec.resize)
    image = torch.from_numpy(transform_image(arr, geo)).permute(2, 0, 1).contiguous()
    try:
        gt = read_ground_truth(rec, spec, (w, h))
    except AnnotationError as exc:
        raise DatasetError(str(exc)) from None
    for p in gt.problems:
        log.debug("%s", p)
    return Sample(image, rec.label, rec.image_id, build_regions(gt, spec, geo), (w, h))


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
    """Dataset fingerprint: spec (minus root), labels-table content, each image's split and label, each
    file's relative path and size, the content of text annotations (a shared COCO/CSV file once) and of
    split files.
    A changed dataset gets a new fingerprint."""
    root = Path(spec.root).resolve()
    h = hashlib.sha256()
    spec_d = spec.to_dict()
    spec_d.pop("root")  # the same files moved elsewhere are the same dataset
    h.update(repr(sorted(spec_d.items())).encode())
    if spec.labels and spec.layout == "table":
        h.update(hashlib.sha256((root / spec.labels).read_bytes()).digest())
    hashed: dict[Path, bytes] = {}
    for r in records:
        # the split and label each image got (a drawn split follows a rule that may change between versions)
        h.update(f"{r.image_id}\0{r.split}\0{r.label}\0".encode())
        for p in (r.image_path, r.mask_path, r.boxes_path, *r.more_masks):
            if p is None:
                continue
            h.update(str(p.relative_to(root)).encode())
            h.update(str(p.stat().st_size if p.exists() else -1).encode())
            if p.suffix.lower() in (".xml", ".json", ".txt", ".csv", ".tsv", ".parquet"):
                if p not in hashed:
                    hashed[p] = hashlib.sha256(p.read_bytes()).digest() if p.exists() else b"missing"
                h.update(hashed[p])
    if spec.split_files:
        for s in SPLITS:
            p = root / spec.split_files.format(split=s)
            h.update(hashlib.sha256(p.read_bytes()).digest() if p.is_file() else b"missing")
    return h.hexdigest()[:16]
