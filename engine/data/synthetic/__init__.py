"""Seeded generators of the demo datasets, written as real files (images, masks, VOC boxes, labels).

``GENERATORS`` maps an experiment's ``generator = "..."`` to ``(config class, generate, spec)``.
"""
from __future__ import annotations

from . import confounded, smear, source, ultrasound

GENERATORS = {
    "blood_smear": (smear.SmearConfig, smear.generate_blood_smear, smear.smear_spec),
    "ultrasound": (ultrasound.UltrasoundConfig, ultrasound.generate_ultrasound, ultrasound.ultrasound_spec),
    "confounded": (confounded.ConfoundedConfig, confounded.generate_confounded, confounded.confounded_spec),
}

__all__ = ["GENERATORS", "confounded", "smear", "source", "ultrasound"]
