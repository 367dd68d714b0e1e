"""Hub weights on a machine without network (issue 22.3): a Hugging Face cache in the hub's own layout, built
with random weights and timm's own save helper in a temporary HF_HOME, serves an experiment under
HF_HUB_OFFLINE=1; the dry run lists where every model's weights come from; a missing cache entry is one line
before any work naming the command that fetches it and how to copy the cache over."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import duckdb
import pytest
import timm
import torch
from runner_fixtures import run_cli

HUB_NAME = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
REPO = "timm/" + HUB_NAME
COMMIT = "0123456789abcdef0123456789abcdef01234567"

EXP = f"""
name = "hub"
seed = 0
batch_size = 4
work_dir = "work"

[[datasets]]
name = "smear"
generate = "blood_smear"
params = {{ n_train = 4, n_val = 4, n_test = 4 }}
input_size = 224

[[models]]
name = "{HUB_NAME}"
pretrained = true
train = {{ epochs = 1, batch_size = 4, warmup_epochs = 0 }}

[[models]]
name = "{HUB_NAME}"
pretrained = true
fine_tuning = "as given"

[[models]]
name = "vit_tiny_patch16_224"
init = "random"

[methods]
attention = {{ layer = -1 }}

[metrics]
pointing_game = {{}}

[sanity]
images = 0
"""


def build_hub_cache(hf_home: Path) -> Path:
    """models--timm--<name>/{blobs, snapshots/<commit>, refs/main}, as huggingface_hub lays a download out;
    the files are what timm's save_for_hf writes for a random model of the architecture."""
    staging = hf_home / "staging"
    torch.manual_seed(0)
    model = timm.create_model(HUB_NAME, pretrained=False, num_classes=4)  # a 4-class classifier, as published
    timm.models.save_for_hf(model, staging, safe_serialization=True)
    repo = hf_home / "hub" / ("models--" + REPO.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    for f in sorted(staging.iterdir()):
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        f.replace(blob)
        (snap / f.name).symlink_to(os.path.relpath(blob, snap))
    staging.rmdir()
    return snap / "model.safetensors"


def _env(hf_home: Path) -> dict:
    return {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    weights = build_hub_cache(root / "hf")
    exp = root / "hub.toml"
    exp.write_text(EXP)
    return root, exp, weights


@pytest.mark.slow  # end-to-end: `engine run --dry-run` in a subprocess
def test_dry_run_lists_where_the_weights_come_from(offline):
    root, exp, weights = offline
    out = run_cli("run", exp, "--db", root / "dry.duckdb", "--dry-run", env=_env(root / "hf"))
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if x.strip().startswith(HUB_NAME))
    assert f"hub {HUB_NAME}" in line and str(weights) in line and "present" in line and "fine-tuned here" in line
    assert "vit_tiny_patch16_224:random: random init (no weights) -- present; untrained" in out.stdout


@pytest.mark.slow  # end-to-end: `engine run` in a subprocess
def test_experiment_runs_from_the_cache_offline(offline):
    root, exp, _ = offline
    db = root / "r.duckdb"
    out = run_cli("run", exp, "--db", db, env=_env(root / "hf"))
    assert out.returncode == 0, out.stderr[-3000:]
    with duckdb.connect(str(db), read_only=True) as con:
        rows = {r[0]: r[1:] for r in con.execute("SELECT init, name, strategy, fine_tuning FROM models").fetchall()}
        n_scores = con.execute("SELECT count(DISTINCT model_id) FROM scores").fetchone()[0]
    # the backbone came from the (offline) hub cache; fine-tuned here, and evaluated as given
    assert rows["trained"] == (HUB_NAME, "hub:augreg_in21k_ft_in1k", "trained")
    assert rows["given"] == (HUB_NAME, "hub:augreg_in21k_ft_in1k", "as given")
    assert n_scores == 3


@pytest.mark.slow  # end-to-end: `engine run` in a subprocess
def test_missing_cache_entry_is_one_line_before_any_work(tmp_path):
    exp = tmp_path / "hub.toml"
    exp.write_text(EXP)
    empty = tmp_path / "empty_hf"
    empty.mkdir()
    dry = run_cli("run", exp, "--db", tmp_path / "r.duckdb", "--dry-run", env=_env(empty))
    # the dry run lists where the weights are (MISSING) and refuses as the run would, in one line
    assert dry.returncode == 2 and "not in the cache" in dry.stdout and "MISSING" in dry.stdout
    assert "the run would refuse it" in dry.stderr and "hf download" in dry.stderr
    out = run_cli("run", exp, "--db", tmp_path / "r.duckdb", env=_env(empty))
    assert out.returncode == 2
    lines = [x for x in out.stderr.strip().splitlines() if " INFO " not in x]
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert f"hf download {REPO} model.safetensors" in lines[0]
    assert f"models--timm--{HUB_NAME}" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0]
    assert not (tmp_path / "r.duckdb").exists()
