"""Fine-tuning options (layer decay, class-balanced loss, early stopping, augmentation) and grid search."""
from __future__ import annotations

import hashlib

import pytest
import torch

from engine.data import ImageDataset, load_records
from engine.models import TrainConfig, class_weights, create_model, fine_tune, grid_search
from engine.models.train import _param_groups


@pytest.fixture(scope="module")
def splits(smear_spec):
    records, classes = load_records(smear_spec)
    return tuple(ImageDataset(smear_spec, s, records=records, classes=classes) for s in ("train", "val")), classes


def _weights_hash(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def test_class_weights_inverse_frequency():
    w = class_weights([0, 0, 0, 1, 2, 2], 4)  # n / (K n_k) with n = 6, K = 4; class 3 absent -> 0
    torch.testing.assert_close(w, torch.tensor([6 / 12, 6 / 4, 6 / 8, 0.0]))
    torch.testing.assert_close(class_weights([0, 1, 0, 1], 2), torch.ones(2))


def test_layer_decay_scales_lr_by_depth():
    model, _ = create_model("vit_demo", 3)  # 4 blocks: embeddings depth 0, blocks 1..4, head 5
    groups = _param_groups(model, TrainConfig(layer_decay=0.5))
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    wd = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert scale[id(model.head.weight)] == 1.0
    assert scale[id(model.blocks[3].mlp.fc1.weight)] == 0.5
    assert scale[id(model.blocks[0].attn.qkv.weight)] == 0.5 ** 4
    assert scale[id(model.patch_embed.proj.weight)] == 0.5 ** 5
    assert wd[id(model.pos_embed)] == 0.0 and wd[id(model.blocks[0].norm1.weight)] == 0.0
    assert wd[id(model.blocks[0].attn.qkv.weight)] == 0.05
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="layer_decay"):
        TrainConfig(layer_decay=1.5)


def test_same_seed_same_weights_with_every_option(splits):
    (tr, va), classes = splits
    cfg = TrainConfig(epochs=2, batch_size=8, warmup_epochs=1, seed=3, layer_decay=0.75, label_smoothing=0.1,
                      class_balanced=True, flips=False, rot90=True, monitor="val_balanced_accuracy")
    hashes = []
    for _ in range(2):
        torch.manual_seed(11)
        model, info = create_model("vit_demo", len(classes))
        res = fine_tune(model, info, tr, va, cfg, progress=False)
        hashes.append(_weights_hash(model))
    assert hashes[0] == hashes[1]
    assert res.class_weights == pytest.approx([1.0] * len(classes))  # the generated set is balanced
    assert res.best_val_balanced_accuracy == max(h["val_balanced_accuracy"] for h in res.history)
    assert {"val_loss", "val_balanced_accuracy", "lr", "train_loss"} <= set(res.history[0])


def test_early_stopping_on_val_loss(splits):
    (tr, va), classes = splits
    torch.manual_seed(0)
    model, info = create_model("vit_demo", len(classes))
    # a learning rate of zero never improves the validation loss after the first epoch
    res = fine_tune(model, info, tr, va, TrainConfig(epochs=6, lr=0.0, batch_size=8, warmup_epochs=0,
                                                     monitor="val_loss", patience=2), progress=False)
    assert res.stopped_early and len(res.history) == 3 and res.best_epoch == 0
    assert res.best_val_loss == res.history[0]["val_loss"]
    with pytest.raises(ValueError, match="monitor"):
        TrainConfig(monitor="accuracy")


@pytest.mark.slow  # long training: a grid search
def test_grid_search_selects_by_balanced_accuracy_and_keeps_the_model(splits):
    (tr, va), classes = splits

    def build():
        return create_model("vit_demo", len(classes))

    base = TrainConfig(epochs=1, batch_size=8, warmup_epochs=0, seed=0)
    res = grid_search(build, tr, va, base, {"lr": [0.0, 1e-3], "weight_decay": [0.0, 0.05]}, progress=False)
    assert [t["params"] for t in res.trials] == [{"lr": 0.0, "weight_decay": 0.0}, {"lr": 0.0, "weight_decay": 0.05},
                                                 {"lr": 1e-3, "weight_decay": 0.0}, {"lr": 1e-3, "weight_decay": 0.05}]
    assert sum(t["selected"] for t in res.trials) == 1
    best = res.best
    key = [(-t["val_balanced_accuracy"], t["val_loss"], t["trial"]) for t in res.trials]
    assert best["trial"] == min(key)[2]
    for t in res.trials:
        assert {"params", "best_epoch", "val_loss", "val_accuracy", "val_balanced_accuracy", "selected", "seconds",
                "history"} <= set(t) and len(t["history"]) == 1
    assert res.config.lr == best["params"]["lr"] and res.config.epochs == 1
    # the returned model is the selected trial's (kept, not retrained): its validation loss matches
    from engine.models.evaluation import predict
    assert predict(res.model, res.info, va)["loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert not res.model.training
    # lr = 0: the first two trials keep the initial weights, so they tie on every metric
    assert res.trials[0]["val_loss"] == res.trials[1]["val_loss"]
    with pytest.raises(ValueError, match="not TrainConfig fields"):
        grid_search(build, tr, va, base, {"learning_rate": [1e-3]}, progress=False)
