"""Model factory, checkpoints (safetensors + sidecar), local weights, fine-tuning."""
from __future__ import annotations

import pytest
import torch

from engine.data import ImageDataset, load_records
from engine.models import TrainConfig, create_model, fine_tune, load_checkpoint, read_sidecar, save_checkpoint


def test_demo_model_shape():
    model, info = create_model("vit_demo", 4)
    assert info.grid == (8, 8) and info.input_size == 64 and info.num_prefix_tokens == 1
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 4)


def test_vit_b16_builds_at_real_size():
    model, info = create_model("vit_b16", 3)
    assert info.grid == (14, 14) and info.input_size == 224
    assert sum(p.numel() for p in model.parameters()) > 80e6


def test_checkpoint_roundtrip_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model, info = create_model("vit_demo", 3)
    path = tmp_path / "m.safetensors"
    sha = save_checkpoint(path, model, info, {"init": "random", "hparams": {"lr": 1}})
    loaded, info2, side = load_checkpoint(path)
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert side["sha256"] == sha and read_sidecar(path)["hparams"] == {"lr": 1} and info2 == info
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ValueError, match="do not match the sha256"):
        load_checkpoint(path)


def test_local_weights_by_path(tmp_path):
    torch.manual_seed(1)
    src, _ = create_model("vit_demo", 5)
    torch.save(src.state_dict(), tmp_path / "w.pth")
    same, _ = create_model("vit_demo", 5, weights=tmp_path / "w.pth")
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(same.eval()(x), src.eval()(x))
    other, _ = create_model("vit_demo", 2, weights=tmp_path / "w.pth")  # head replaced for 2 classes
    assert other.get_classifier().out_features == 2
    torch.testing.assert_close(other.patch_embed.proj.weight, src.patch_embed.proj.weight)
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        create_model("vit_demo", 2, weights=tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="unknown model"):
        create_model("no_such_model_xyz", 2)


def test_fine_tune_is_deterministic_and_keeps_best(smear_spec):
    records, classes = load_records(smear_spec)
    tr, va = (ImageDataset(smear_spec, s, records=records, classes=classes) for s in ("train", "val"))
    cfg = TrainConfig(epochs=2, batch_size=8, warmup_epochs=1, seed=0)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model, info = create_model("vit_demo", len(classes))
        res = fine_tune(model, info, tr, va, cfg, progress=False)
        outs.append((res, model.patch_embed.proj.weight.detach().clone()))
    assert outs[0][0].history == outs[1][0].history
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=0, atol=0)
    res = outs[0][0]
    assert len(res.history) == 2 and res.best_val_accuracy == max(h["val_accuracy"] for h in res.history)
    assert not model.training
