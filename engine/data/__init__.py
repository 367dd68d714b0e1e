"""Datasets: specs, loaders, annotation readers, transforms, checks and the demo generator."""
from .dataset import (SPLITS, DatasetError, DatasetSpec, ImageDataset, Record, Sample, SpecError, collate_samples,
                      fingerprint, load_dataset_config, load_records, load_sample, read_image, scan_records)
from .ground_truth import region_names
from .images_io import image_size
from .splits import select_scored

__all__ = ["SPLITS", "DatasetError", "DatasetSpec", "ImageDataset", "Record", "Sample", "SpecError",
           "collate_samples", "fingerprint", "load_dataset_config", "load_records", "load_sample", "read_image",
           "scan_records", "select_scored", "region_names", "image_size"]
