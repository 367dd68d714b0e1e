"""The studies' real architectures at their real size and resolution, random weights, on CPU."""
from __future__ import annotations

import pytest
import timm
import torch

from engine.explain import METHODS, run_methods

pytestmark = pytest.mark.slow  # end-to-end: the studies' real architectures at full size

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


# ---------------------------------------------------------------- every zoo entry at its real size
ZOO_REAL = ["vit_s16", "vit_b16", "vit_b16_random", "vit_b16_supervised", "vit_b16_dino", "vit_b16_mae", "deit_b16",
            "swin_b", "vit_b14_dinov2"]


@pytest.mark.parametrize("name", ZOO_REAL)
def test_zoo_entry_trains_one_step_and_explains(name):
    """Random weights (no hub here), the entry's real input size, one AdamW step with layer decay, one map."""
    import torch.nn.functional as F

    from engine.models import TrainConfig, create_model, normalise
    from engine.models.train import _param_groups
    torch.manual_seed(0)
    model, info = create_model(name, 3, pretrained=False)
    x = normalise(torch.rand(1, 3, info.input_size, info.input_size), info)
    opt = torch.optim.AdamW(_param_groups(model, TrainConfig(layer_decay=0.75)), lr=1e-4)
    before = model.get_classifier().weight.detach().clone()
    model.train()
    loss = F.cross_entropy(model(x), torch.tensor([1]))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.get_classifier().weight)
    method = "gradcam" if info.arch == "swin" else "chefer_gae"
    maps, logits, _ = run_methods(model.eval(), x, [method])
    assert logits.shape == (1, 3) and torch.isfinite(maps[method]).all()
    expected = (7, 7) if info.arch == "swin" else info.grid
    assert tuple(maps[method].shape[-2:]) == expected
