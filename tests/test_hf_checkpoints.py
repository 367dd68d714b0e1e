"""Hugging Face transformers ViT / DeiT folders loaded into timm (issue 22.2): the same logits as transformers
on the same inputs, every trace method runs, no transformers import at run time, bad folders refused in one
line.  transformers is a test dependency (pyproject's ``test`` extra); without it these tests skip."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine import PROJECT_ROOT
from engine.explain import METHODS, run_methods
from engine.models import create_model
from engine.models.given import load_given
from engine.models.hf import SUPPORTED, FolderError, folder_weights

transformers = pytest.importorskip("transformers")

SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32,
             patch_size=8, num_labels=3)


def _save(folder: Path, kind: str = "vit", seed: int = 0) -> torch.nn.Module:
    """A small random transformers classifier, saved by transformers itself."""
    torch.manual_seed(seed)
    if kind == "vit":
        model = transformers.ViTForImageClassification(transformers.ViTConfig(**SIZES))
    elif kind == "deit":
        model = transformers.DeiTForImageClassification(transformers.DeiTConfig(**SIZES))
    else:
        model = transformers.DeiTForImageClassificationWithTeacher(transformers.DeiTConfig(**SIZES))
    with torch.no_grad():  # non-trivial norms and biases, so a wrong key mapping shows
        for name, p in model.named_parameters():
            if "layernorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    model.eval().save_pretrained(folder)
    return model


@pytest.mark.parametrize("kind,name", [("vit", "vit_tiny_patch16_224"), ("deit", "deit_tiny_patch16_224"),
                                       ("teacher", "deit_tiny_distilled_patch16_224")])
def test_same_logits_as_transformers(tmp_path, kind, name):
    hf = _save(tmp_path / kind, kind)
    model, info = create_model(name, 3, weights=tmp_path / kind)
    model.eval()
    assert info.input_size == 32 and info.grid == (4, 4)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        want = hf(pixel_values=x).logits
        got = model(x)
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()


@pytest.mark.parametrize("kind,name", [("vit", "vit_tiny_patch16_224"), ("deit", "deit_tiny_patch16_224")])
def test_every_trace_method_runs_on_a_transformers_checkpoint(tmp_path, kind, name):
    _save(tmp_path / kind, kind)
    model, info = load_given(name, ["a", "b", "c"], weights=tmp_path / kind)
    trace = sorted(m for m, i in METHODS.items() if i.kind == "trace")
    assert len(trace) >= 5
    maps, logits, _ = run_methods(model, torch.randn(2, 3, 32, 32), trace)
    assert set(maps) == set(trace) and logits.shape == (2, 3)
    for m, v in maps.items():
        assert v.shape == (2, 4, 4) and torch.isfinite(v).all(), m


def test_no_transformers_import_at_run_time(tmp_path):
    _save(tmp_path / "vit")
    code = ("import sys, torch; from engine.models import create_model; "
            f"m, _ = create_model('vit_tiny_patch16_224', 3, weights={str(tmp_path / 'vit')!r}); "
            "m.eval()(torch.zeros(1, 3, 32, 32)); print('transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_bad_folders_are_one_line(tmp_path):
    _save(tmp_path / "vit")
    (tmp_path / "vit" / "config.json").unlink()
    with pytest.raises(FolderError, match="needs a config.json"):
        folder_weights(tmp_path / "vit")
    _save(tmp_path / "other")
    cfg = json.loads((tmp_path / "other" / "config.json").read_text())
    cfg["architectures"], cfg["model_type"] = ["SwinForImageClassification"], "swin"
    (tmp_path / "other" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FolderError) as exc:
        folder_weights(tmp_path / "other")
    msg = str(exc.value)
    assert "\n" not in msg and "'SwinForImageClassification' is not supported" in msg
    assert all(s in msg for s in SUPPORTED)
    _save(tmp_path / "noweights")
    (tmp_path / "noweights" / "model.safetensors").unlink()
    with pytest.raises(FolderError, match="no weights file"):
        folder_weights(tmp_path / "noweights")


def test_experiment_with_a_transformers_folder_without_config_is_refused(tmp_path):
    from engine.runner.experiment import parse_experiment
    from engine.runner.run import BadInput, validate_run
    _save(tmp_path / "vit")
    (tmp_path / "vit" / "config.json").unlink()
    exp = parse_experiment({"name": "x", "datasets": [{"name": "d", "generate": "blood_smear"}],
                            "models": [{"name": "vit_tiny_patch16_224", "weights": str(tmp_path / "vit"),
                                        "fine_tuning": "as given"}],
                            "methods": {"attention": {}}, "metrics": {"pointing_game": {}}}, tmp_path)
    with pytest.raises(BadInput, match="needs a config.json"):
        validate_run(exp, tmp_path / "work")
