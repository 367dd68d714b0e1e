"""Datasets: specs, loaders, annotation readers, transforms, checks and the demo generator.

The names of :mod:`.dataset` (the samples as torch tensors, the loader, the fingerprint) load on first use,
so reading specs, records and paths (the dashboard does) never imports torch."""
from __future__ import annotations

import importlib

from .errors import DatasetError
from .ground_truth import region_names
from .images_io import image_size
from .records import Record, load_records, scan_records
from .spec import SPLITS, DatasetSpec, SpecError, load_dataset_config
from .splits import select_scored

_TORCH_BOUND = ("ImageDataset", "Sample", "collate_samples", "fingerprint", "load_sample", "read_image")

__all__ = ["SPLITS", "DatasetError", "DatasetSpec", "Record", "SpecError", "image_size", "load_dataset_config",
           "load_records", "region_names", "scan_records", "select_scored", *_TORCH_BOUND]


def __getattr__(name: str):
    if name in _TORCH_BOUND:
        return getattr(importlib.import_module(".dataset", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
