"""Datasets: specs, loaders, annotation readers, transforms and the demo generator."""
from .dataset import (DatasetError, DatasetSpec, ImageDataset, Record, Sample, collate_samples, fingerprint,
                      load_records, load_sample)

__all__ = ["DatasetError", "DatasetSpec", "ImageDataset", "Record", "Sample", "collate_samples", "fingerprint",
           "load_records", "load_sample"]
