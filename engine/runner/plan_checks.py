"""What a prepared experiment must hold before any work, beyond the files being there: the splits it
needs are not empty, and a sample of the annotations can be read against their images (a mask of another
size, boxes of ``nan`` / ``inf``).  Each failure is one line naming the dataset and the reason; the run
refuses it (exit 2) and ``run --dry-run`` reports it."""
from __future__ import annotations

import random

from ..data import DatasetError, image_size
from ..data.annotations import AnnotationError
from ..data.ground_truth import read_ground_truth
from .validate import check_input_sizes

SAMPLE_ANNOTATIONS = 5  # annotated images read per dataset; all of them failing is refused


def check_splits(exp, d) -> None:
    """The scored split has images, and a fine-tuned model has train and val images."""
    spec, counts = d.spec, {}
    for r in d.records:
        counts[r.split] = counts.get(r.split, 0) + 1
    have = ", ".join(f"{s} {counts.get(s, 0)}" for s in ("train", "val", "test"))
    if not d.scored:
        where = "any split" if spec.score_split == "all" else f"the {spec.score_split} split"
        raise DatasetError(f"dataset {spec.name!r}: no image of {where} would be scored ({have} images): "
                           f"check split_fractions / the split files, score_split and score_classes")
    trains = [e.key for e in exp.model_entries(d.block) if e.init == "trained"]
    missing = [s for s in ("train", "val") if not counts.get(s)]
    if trains and missing:
        raise DatasetError(f"dataset {spec.name!r}: the {' and '.join(missing)} split has no images ({have}), "
                           f"but model {trains[0]!r} is fine-tuned on train and validated on val")


def check_annotations(d) -> None:
    """A seeded sample of annotated images: refused when none of them reads (every mask of another size
    than its image, every box not a finite number, ...), with the first reason."""
    spec = d.spec
    annotated = [r for r in d.records if (r.mask_path is not None and r.mask_path.is_file())
                 or (r.boxes_path is not None and r.boxes_path.is_file()) or spec.boxes_format in ("csv", "coco")]
    if not annotated or not (spec.mask_regions or spec.boxes_format):
        return
    picked = random.Random(0).sample(annotated, min(SAMPLE_ANNOTATIONS, len(annotated)))
    reasons = []
    for r in picked:
        try:
            read_ground_truth(r, spec, image_size(r.image_path))
            return
        except (AnnotationError, DatasetError, OSError) as exc:
            reasons.append(" ".join(str(exc).split()))
    raise DatasetError(f"dataset {spec.name!r}: the annotations of none of {len(picked)} sampled images can be "
                       f"used (e.g. {reasons[0]})")


def check_prepared(exp, prepared) -> None:
    """Every check above, and each dataset's input_size against its models (raises one line)."""
    check_input_sizes(exp, prepared)
    for d in prepared:
        check_annotations(d)  # first: unreadable annotations also leave nothing to score
        check_splits(exp, d)
