"""The zoo's entries, where weights come from (hub, local cache, file) and how they are fitted."""
from __future__ import annotations

import time

import pytest
import torch
from safetensors.torch import save_file

from engine.models import ZOO, WeightsUnavailable, create_model
from engine.models import weights as weights_mod

STUDY_ENTRIES = {
    "vit_b16_random": ("vit_base_patch16_224", "vit", "random"),
    "vit_b16_supervised": ("vit_base_patch16_224.augreg2_in21k_ft_in1k", "vit", "supervised"),
    "vit_b16_dino": ("vit_base_patch16_224.dino", "vit", "dino"),
    "vit_b16_mae": ("vit_base_patch16_224.mae", "vit", "mae"),
    "deit_b16": ("deit_base_patch16_224.fb_in1k", "deit", "supervised"),
    "swin_b": ("swin_base_patch4_window7_224.ms_in22k_ft_in1k", "swin", "supervised"),
    "vit_b14_dinov2": ("vit_base_patch14_dinov2.lvd142m", "vit", "dinov2"),
}


def test_zoo_entries_record_arch_and_strategy():
    for name, (timm_name, arch, strategy) in STUDY_ENTRIES.items():
        e = ZOO[name]
        assert (e.timm_name, e.arch, e.strategy) == (timm_name, arch, strategy), name
        assert e.pretrained == (strategy != "random"), name
    assert {"vit_demo", "vit_s16", "vit_b16"} <= set(ZOO)


def test_normalisation_and_size_from_pretrained_config():
    _, info = create_model("vit_b16_dino", 3, pretrained=False)
    assert info.mean == pytest.approx((0.485, 0.456, 0.406)) and info.std == pytest.approx((0.229, 0.224, 0.225))
    _, info = create_model("vit_b16_supervised", 3, pretrained=False)
    assert info.mean == (0.5, 0.5, 0.5) and info.input_size == 224
    _, info = create_model("vit_b14_dinov2", 3, pretrained=False)
    assert info.input_size == 518 and info.grid == (37, 37)
    _, info = create_model("deit_b16", 3, pretrained=False)
    assert (info.arch, info.strategy) == ("deit", "random")  # random weights: the label says so


def test_missing_weights_offline_fail_fast_and_clearly(monkeypatch):
    monkeypatch.setattr(weights_mod, "hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(weights_mod, "cached_hub_file", lambda cfg: None)
    t = time.perf_counter()
    with pytest.raises(WeightsUnavailable) as exc:
        create_model("vit_b16_dino", 3)  # hub-pretrained entry: loads hub weights by default
    msg = str(exc.value)
    assert "vit_b16_dino" in msg and "vit_base_patch16_224.dino" in msg
    assert "network" in msg and "weights=" in msg and ".pth" in msg
    assert time.perf_counter() - t < 30


def test_hub_probe_never_hangs():
    t = time.perf_counter()
    weights_mod.hub_reachable(timeout=1.0)  # offline here: False; online: True; either way quickly
    assert time.perf_counter() - t < 5


def test_hub_weights_from_the_local_cache_when_offline(tmp_path, monkeypatch):
    torch.manual_seed(3)
    src, _ = create_model("vit_demo", 0)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "model.safetensors"))
    monkeypatch.setattr(weights_mod, "hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(weights_mod, "cached_hub_file", lambda cfg: str(tmp_path / "model.safetensors"))
    model, info = create_model("vit_demo", 4, pretrained=True)
    torch.testing.assert_close(model.blocks[2].attn.qkv.weight, src.blocks[2].attn.qkv.weight, rtol=0, atol=0)
    assert model.get_classifier().out_features == 4 and info.strategy.startswith("hub:")


def test_random_entry_never_loads_weights(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the hub was asked")
    monkeypatch.setattr("engine.models.factory.hub_state_dict", boom)
    _, info = create_model("vit_demo", 2, pretrained=False)
    assert info.strategy == "random"


def test_local_weights_safetensors_identical_outputs(tmp_path):
    torch.manual_seed(4)
    src, _ = create_model("vit_demo", 3)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "w.safetensors"))
    same, info = create_model("vit_demo", 3, weights=tmp_path / "w.safetensors")
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(same.eval()(x), src.eval()(x), rtol=0, atol=0)
    assert info.strategy == "local"  # no sidecar says otherwise
    (tmp_path / "w.safetensors.json").write_text('{"strategy": "dino"}')
    assert create_model("vit_demo", 3, weights=tmp_path / "w.safetensors")[1].strategy == "dino"


def test_mae_norm_goes_to_fc_norm_and_pos_embed_is_resampled(tmp_path):
    torch.manual_seed(5)
    src, _ = create_model("vit_demo", 0)  # token pooling, final norm, no head: like the MAE release
    with torch.no_grad():
        src.norm.weight.uniform_(0.5, 1.5)
    sd = {k: v.contiguous() for k, v in src.state_dict().items()}
    save_file(sd, str(tmp_path / "mae.safetensors"))
    avg, _ = create_model("vit_demo", 3, weights=tmp_path / "mae.safetensors", global_pool="avg")
    assert isinstance(avg.norm, torch.nn.Identity)
    torch.testing.assert_close(avg.fc_norm.weight, src.norm.weight, rtol=0, atol=0)
    small, info = create_model("vit_demo", 3, weights=tmp_path / "mae.safetensors", img_size=32)
    assert info.grid == (4, 4) and small.pos_embed.shape == (1, 17, 192)
    torch.testing.assert_close(small.blocks[0].mlp.fc1.weight, src.blocks[0].mlp.fc1.weight, rtol=0, atol=0)


def test_weights_of_another_architecture_are_refused(tmp_path):
    other, _ = create_model("vit_demo", 3, depth=2)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(tmp_path / "d2.safetensors"))
    with pytest.raises(RuntimeError, match="do not fit"):
        create_model("vit_demo", 3, weights=tmp_path / "d2.safetensors")
