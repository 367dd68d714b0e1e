"""Per-epoch training state: an interrupted fine-tuning resumes from its last epoch and ends with the
weights an uninterrupted run has; a state saved for another config is ignored."""
from __future__ import annotations

import pytest
import torch

from engine.data import ImageDataset, load_records
from engine.models import TrainConfig, create_model, fine_tune
from engine.models import resume as resume_mod
from engine.models import train as train_mod

pytestmark = pytest.mark.slow  # end-to-end: training, interrupted and resumed


@pytest.fixture(scope="module")
def splits(smear_spec):
    records, classes = load_records(smear_spec)
    return tuple(ImageDataset(smear_spec, s, records=records, classes=classes) for s in ("train", "val")), classes


def _train(splits, cfg, resume=None):
    (train_ds, val_ds), classes = splits
    torch.manual_seed(0)
    model, info = create_model("vit_demo", len(classes))
    res = fine_tune(model, info, train_ds, val_ds, cfg, progress=False, resume=resume)
    return model, res


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_interrupted_training_resumes_to_the_same_weights(splits, tmp_path, monkeypatch):
    cfg = TrainConfig(epochs=3, batch_size=16, lr=2e-3, warmup_epochs=1, seed=3)
    plain, plain_res = _train(splits, cfg)
    state = tmp_path / "m.train-state"
    real_save, calls = resume_mod.save_state, []

    def save_then_stop(*args, **kwargs):
        real_save(*args, **kwargs)
        calls.append(args[5])  # the epoch just saved
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C after the second epoch

    monkeypatch.setattr(train_mod, "save_state", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _train(splits, cfg, resume=state)
    assert calls == [0, 1] and state.exists()
    monkeypatch.setattr(train_mod, "save_state", real_save)
    epochs_run = []
    monkeypatch.setattr(train_mod, "predict", lambda *a, **k: _count(epochs_run, *a, **k))  # once per epoch
    resumed, res = _train(splits, cfg, resume=state)
    assert len(epochs_run) == 1  # only the third epoch ran again
    assert [h["epoch"] for h in res.history] == [0, 1, 2]
    assert res.history == plain_res.history and res.best_epoch == plain_res.best_epoch
    assert _same(resumed, plain)


def _count(log, *args, **kwargs):
    from engine.models.evaluation import predict
    log.append(1)
    return predict(*args, **kwargs)


def test_state_of_another_config_is_not_resumed(splits, tmp_path):
    state = tmp_path / "m.train-state"
    cfg = TrainConfig(epochs=1, batch_size=16, seed=3)
    _train(splits, cfg, resume=state)
    assert state.exists()
    other = TrainConfig(epochs=2, batch_size=16, seed=3)
    model, info = create_model("vit_demo", 4)
    opt = torch.optim.AdamW(model.parameters())
    assert resume_mod.load_state(state, other, model, opt, torch.Generator(), "cpu") is None
    state.write_bytes(b"not a torch file")
    assert resume_mod.load_state(state, cfg, model, opt, torch.Generator(), "cpu") is None  # damaged: afresh
