"""The studies' real architectures at their real size and resolution, random weights, on CPU."""
from __future__ import annotations

import pytest
import timm
import torch

from engine.explain import METHODS, run_methods

TRACE = sorted(m for m in METHODS if METHODS[m].kind == "trace")


def _run(model, size, batch=1):
    x = torch.randn(batch, 3, size, size)
    skipped: dict[str, str] = {}
    maps, logits, targets = run_methods(model.eval(), x, TRACE, not_applicable=skipped)
    assert torch.equal(targets, logits.argmax(1))
    for name, m in maps.items():
        assert torch.isfinite(m).all(), name
    return maps, skipped


@pytest.mark.parametrize("name, prefix", [("vit_base_patch16_224", 1), ("deit_base_distilled_patch16_224", 2)])
def test_vit_b16_and_distilled_deit(name, prefix):
    model = timm.create_model(name, pretrained=False, num_classes=3)
    assert model.num_prefix_tokens == prefix
    maps, skipped = _run(model, 224)
    assert all(m.shape == (1, 14, 14) for m in maps.values())
    if prefix == 2:
        assert set(skipped) == {"chefer_lrp"} and "distilled" in skipped["chefer_lrp"]
    else:
        assert not skipped and set(maps) == set(TRACE)


def test_dinov2_with_registers():
    model = timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False, num_classes=3)
    assert model.num_prefix_tokens == 5
    maps, skipped = _run(model, 518)
    assert not skipped and all(m.shape == (1, 37, 37) for m in maps.values())


def test_mae_style_global_pool():
    model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=3, global_pool="avg")
    maps, skipped = _run(model, 224)
    assert not skipped and all(m.shape == (1, 14, 14) for m in maps.values())


def test_swin_gradcam_works_attention_methods_say_why():
    model = timm.create_model("swin_base_patch4_window7_224", pretrained=False, num_classes=3)
    maps, skipped = _run(model, 224, batch=2)
    assert set(maps) == {"gradcam"} and maps["gradcam"].shape == (2, 7, 7)
    assert set(skipped) == set(TRACE) - {"gradcam"}
    assert all("not applicable" in why or "Swin" in why for why in skipped.values())
