"""Captum's "did not already require gradients" warning is shown once per process, not once per call."""
from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("captum")


def test_grad_warning_once(monkeypatch):
    from engine.explain import captum_methods
    from engine.models import create_model
    torch.manual_seed(0)
    model, info = create_model("vit_demo", 2)
    images, targets = torch.rand(2, 3, info.input_size, info.input_size), torch.tensor([0, 1])
    monkeypatch.setattr(captum_methods, "_warned_once", False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # every warning shown, as a fresh filter list would
        for _ in range(3):
            captum_methods.saliency(model.eval(), images, targets)
    grad = [w for w in seen if "did not already require gradients" in str(w.message)]
    assert len(grad) == 1
