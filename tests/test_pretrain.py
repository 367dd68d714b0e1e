"""Offline pretraining: every strategy runs a few steps, caches by config hash, loads through the zoo."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from engine.data.synthetic.source import SOURCE_CLASSES, SourceConfig, generate_source
from engine.models import ImageSource, PretrainConfig, create_model, pretrain_backbone
from engine.models import pretrain as pretrain_mod
from engine.models.ssl import dino_loss

TINY = PretrainConfig(steps=2, batch_size=8, warmup_steps=1, source_n=16, dino_local_crops=2, dino_out_dim=64,
                      dino_hidden=32, dino_bottleneck=16, mae_decoder_dim=32, mae_decoder_depth=1, mae_decoder_heads=2)


def test_source_generator_is_seeded_balanced_and_not_the_target():
    a, la = generate_source(SourceConfig(n=12, size=32))
    b, lb = generate_source(SourceConfig(n=12, size=32))
    assert a.shape == (12, 32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert np.bincount(la).tolist() == [2] * len(SOURCE_CLASSES)
    assert not {"lymphocyte", "neutrophil", "monocyte", "eosinophil"} & set(SOURCE_CLASSES)
    assert not np.array_equal(a, generate_source(SourceConfig(n=12, size=32, seed=1))[0])


@pytest.mark.parametrize("strategy", ["random", "supervised", "dino", "mae"])
@pytest.mark.slow  # long training: pretraining runs
def test_each_strategy_pretrains_and_loads_through_the_zoo(strategy, tmp_path):
    path = pretrain_backbone("vit_demo", strategy, "synthetic", TINY, cache_dir=tmp_path, progress=False)
    side = json.loads(Path(str(path) + ".json").read_text())
    assert side["strategy"] == strategy and side["config"]["steps"] == 2
    assert len(side["losses"]) == (0 if strategy == "random" else 2)
    if strategy == "dino":
        assert len(side["diagnostics"]["teacher_entropy"]) == 2 and \
            side["collapse"] in (None, "uniform", "one prototype")
    else:
        assert side["diagnostics"] == {} and side["collapse"] is None
    assert all(np.isfinite(side["losses"]))
    sd = load_file(str(path))
    assert not any(k.startswith("head.") for k in sd)
    model, info = create_model("vit_demo", 4, weights=path)
    assert info.strategy == strategy and model.get_classifier().out_features == 4
    torch.testing.assert_close(model.patch_embed.proj.weight, sd["patch_embed.proj.weight"], rtol=0, atol=0)
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 4)


@pytest.mark.slow  # long training: pretraining runs
def test_cache_hit_skips_training_and_seed_is_deterministic(tmp_path, monkeypatch):
    first = pretrain_backbone("vit_demo", "mae", "synthetic", TINY, cache_dir=tmp_path / "a", progress=False)
    again = pretrain_backbone("vit_demo", "mae", "synthetic", TINY, cache_dir=tmp_path / "b", progress=False)
    a, b = load_file(str(first)), load_file(str(again))
    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed, same weights

    def never(*args, **kw):
        raise AssertionError("trained although cached")
    monkeypatch.setattr(pretrain_mod, "_run", never)
    assert pretrain_backbone("vit_demo", "mae", "synthetic", TINY, cache_dir=tmp_path / "a", progress=False) == first
    with pytest.raises(AssertionError, match="although cached"):  # another config is another key
        pretrain_backbone("vit_demo", "mae", "synthetic", TINY.__class__(**{**TINY.to_dict(), "seed": 1}),
                          cache_dir=tmp_path / "a", progress=False)


def test_folder_source_in_domain(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        sub = tmp_path / "imgs" / ("a" if i % 2 else "b") / "deeper"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(sub / f"{i}.png")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    path = pretrain_backbone("vit_demo", "dino", tmp_path / "imgs", TINY, cache_dir=tmp_path / "c", progress=False)
    side = json.loads(Path(str(path) + ".json").read_text())
    assert side["strategy"] == "dino@domain" and side["source"]["kind"] == "folder"
    assert create_model("vit_demo", 2, weights=path)[1].strategy == "dino@domain"
    sup = pretrain_backbone("vit_demo", "supervised", tmp_path / "imgs", TINY, cache_dir=tmp_path / "c",
                            progress=False)  # first-level subfolders a / b are the classes
    assert json.loads(Path(str(sup) + ".json").read_text())["strategy"] == "supervised@domain"
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(flat / "x.png")
    with pytest.raises(ValueError, match="labelled source"):
        pretrain_backbone("vit_demo", "supervised", flat, TINY, cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="no image files"):
        pretrain_backbone("vit_demo", "mae", tmp_path / "c", TINY, cache_dir=tmp_path / "d", progress=False)
    with pytest.raises(ValueError, match="strategy"):
        pretrain_backbone("vit_demo", "simclr", "synthetic", TINY, cache_dir=tmp_path / "d", progress=False)


def test_dino_loss_by_hand():
    # one global view per network; teacher centred and sharpened, student at its own temperature
    t = torch.tensor([[2.0, 0.0]])
    s = torch.tensor([[0.0, 1.0]])
    centre = torch.tensor([[1.0, 1.0]])
    q = torch.softmax((t - centre) / 0.5, -1)
    expected = -(q * torch.log_softmax(s / 0.1, -1)).sum()
    # views: teacher of global 0 vs student of view 1 (view 0 is the same view: skipped)
    got = dino_loss([torch.zeros(1, 2), s], [t], centre, 0.1, 0.5)
    torch.testing.assert_close(got, expected)


def test_image_source_is_in_domain_unlabelled_and_resized(tmp_path):
    images = torch.rand(6, 3, 40, 40)
    src = ImageSource(images, {"dataset": "d", "split": "train", "fingerprint": "abc"})
    path = pretrain_backbone("vit_demo", "mae", src, TINY, cache_dir=tmp_path, progress=False)
    side = json.loads(Path(str(path) + ".json").read_text())
    assert side["strategy"] == "mae@domain"
    assert side["source"] == {"kind": "images", "n": 6, "dataset": "d", "split": "train", "fingerprint": "abc"}
    x, labels = pretrain_mod.load_source(src, TINY, 64)
    assert x.shape == (6, 3, 64, 64) and labels is None
    other = ImageSource(images, {"dataset": "d", "split": "train", "fingerprint": "abd"})
    assert pretrain_backbone("vit_demo", "mae", other, TINY, cache_dir=tmp_path, progress=False) != path
    with pytest.raises(ValueError, match="labelled source"):
        pretrain_backbone("vit_demo", "supervised", src, TINY, cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="expected"):
        pretrain_mod.load_source(ImageSource(torch.rand(0, 3, 8, 8), {}), TINY, 64)


def test_runner_target_source_is_the_training_split_only(tmp_path, monkeypatch):
    from engine.data import ImageDataset, load_records
    from engine.data.synthetic.smear import SmearConfig, generate_blood_smear, smear_spec
    from engine.runner import units
    from engine.runner.experiment import ModelEntry
    spec = smear_spec(generate_blood_smear(tmp_path / "smear", SmearConfig(n_train=5, n_val=3, n_test=4),
                                           progress=False))
    records, classes = load_records(spec)
    train = ImageDataset(spec, "train", records=records, classes=classes)
    seen = {}

    def fake(model, strategy, source, cfg, **kw):
        seen["source"] = source
        return tmp_path / "w.safetensors"
    monkeypatch.setattr(units, "pretrain_backbone", fake)
    entry = ModelEntry(name="vit_demo", pretrain="dino", pretrain_source="target")
    units._pretrained_backbone(entry, spec, train, 0, tmp_path, "cpu", False)
    src = seen["source"]
    assert isinstance(src, ImageSource) and src.images.shape[0] == 5  # never the 3 val or 4 test images
    assert torch.equal(src.images[0], train[0].image) and src.description["split"] == "train"
    with pytest.raises(ValueError, match="labelled source"):
        units._pretrained_backbone(entry.model_copy(update={"pretrain": "supervised"}), spec, train, 0, tmp_path, "cpu",
                                   False)


def test_dino_collapse_statistics_by_hand():
    from engine.models.ssl import collapse_stats
    k = 4
    same = torch.zeros(3, k)  # every output equal to the centre: uniform teacher
    st = collapse_stats(same, torch.zeros(1, k), 0.1)
    assert st["teacher_entropy"] == pytest.approx(1.0) and st["usage_entropy"] == pytest.approx(1.0)
    one = torch.tensor([[10.0, 0, 0, 0]] * 3)  # every image on prototype 0, sharply
    st = collapse_stats(one, torch.zeros(1, k), 0.1)
    assert st["teacher_entropy"] < 1e-3 and st["usage_entropy"] < 1e-3
    spread = torch.eye(k) * 10  # each image its own prototype: healthy
    st = collapse_stats(spread, torch.zeros(1, k), 0.1)
    assert st["teacher_entropy"] < 1e-3 and st["usage_entropy"] == pytest.approx(1.0)
    # by hand: p = softmax([1, 0] / 1) for one image, K = 2
    p = torch.softmax(torch.tensor([1.0, 0.0]), 0)
    h = float(-(p * p.log()).sum()) / np.log(2)
    st = collapse_stats(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2), 1.0)
    assert st["teacher_entropy"] == pytest.approx(h) and st["usage_entropy"] == pytest.approx(h)
    assert pretrain_mod.dino_collapse({"teacher_entropy": [0.95] * 10, "usage_entropy": [1.0] * 10}) == "uniform"
    assert pretrain_mod.dino_collapse({"teacher_entropy": [0.0] * 10, "usage_entropy": [0.05] * 10}) == "one prototype"
    assert pretrain_mod.dino_collapse({"teacher_entropy": [0.3] * 10, "usage_entropy": [0.8] * 10}) is None
    assert pretrain_mod.dino_collapse({}) is None
