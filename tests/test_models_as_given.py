"""A model evaluated as it is (issue 22.1): weights with their own head, nothing trained, identity from the
weights' bytes, class order mapped, bad weights refused before any work; and a dry run of a CUDA experiment
on a machine without CUDA (22.5)."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
import torch
from runner_fixtures import run_cli
from safetensors.torch import save_file

from engine.data.synthetic.smear import CLASSES
from engine.models import create_model
from engine.models.given import GivenWeightsError, class_permutation, load_given, weights_digest
from engine.runner.experiment import ExperimentError, parse_experiment

EXP = """
name = "given"
seed = 0
batch_size = 8
work_dir = "work"

[[datasets]]
name = "smear"
generate = "blood_smear"
params = {{ n_train = 4, n_val = 4, n_test = 8 }}

{models}

[methods]
attention = {{ layer = -1 }}
gradcam_attn = {{}}
saliency = {{}}

[metrics]
pointing_game = {{}}
insertion_auc = {{ n_steps = 3 }}

[sanity]
images = 2
"""

GIVEN = """
[[models]]
name = "vit_demo"
weights = "{weights}"
fine_tuning = "as given"
{extra}
"""


def _weights(path: Path, reverse: bool = False, n: int = len(CLASSES), seed: int = 3) -> Path:
    torch.manual_seed(seed)
    model, _ = create_model("vit_demo", n, pretrained=False)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    if reverse:  # the checkpoint's output i is the dataset's class n-1-i
        for k in ("head.weight", "head.bias"):
            sd[k] = sd[k].flip(0).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path))
    return path


def _write(folder: Path, models: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "given.toml"
    p.write_text(EXP.format(models=models))
    return p


def _q(db: Path, sql: str):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).df()


@pytest.fixture(scope="module")
def given_run(tmp_path_factory):
    """Run 1: the checkpoint as given, the same head reversed without class_order, the random twin.
    Run 2 (its own database, same work folder): the reversed head with class_order."""
    root = tmp_path_factory.mktemp("given")
    w = _weights(root / "mine.safetensors")
    rev = _weights(root / "mine_reversed.safetensors", reverse=True)
    order = str(list(reversed(CLASSES))).replace("'", '"')
    models = (GIVEN.format(weights=w, extra='label = "mine"')
              + GIVEN.format(weights=rev, extra='label = "reversed_unmapped"')
              + '\n[[models]]\nname = "vit_demo"\ninit = "random"\n')
    exp = _write(root, models)
    db = root / "r.duckdb"
    out = run_cli("run", exp, "--db", db)
    assert out.returncode == 0, out.stderr[-3000:]
    exp_rev = _write(root / "rev", GIVEN.format(weights=rev, extra=f'label = "reversed"\nclass_order = {order}'))
    exp_rev.write_text(exp_rev.read_text().replace('work_dir = "work"', f'work_dir = "{root / "work"}"'))
    db_rev = root / "rev.duckdb"
    out_rev = run_cli("run", exp_rev, "--db", db_rev)
    assert out_rev.returncode == 0, out_rev.stderr[-3000:]
    return root, exp, db, db_rev


@pytest.mark.slow  # end-to-end: reads the as-given run (given_run)
def test_as_given_runs_every_stage_without_training(given_run):
    root, exp, db, _ = given_run
    models = _q(db, "SELECT model_id, init, fine_tuning, val_accuracy, history FROM models ORDER BY model_id")
    given = models[models.model_id.str.startswith(("mine@", "reversed_unmapped@"))]
    assert len(given) == 2 and set(given.fine_tuning) == {"as given"} and set(given.init) == {"given"}
    assert given.val_accuracy.isna().all()  # nothing trained: no validation epochs
    jobs = _q(db, "SELECT kind, model_id, status FROM jobs")
    assert (jobs.status == "done").all()
    for mid in given.model_id:
        kinds = set(jobs[jobs.model_id == mid].kind)
        assert {"train", "predict", "evaluate", "sanity"} <= kinds, (mid, kinds)
        assert len(_q(db, f"SELECT * FROM scores WHERE model_id = '{mid}'")) > 0
        assert len(_q(db, f"SELECT * FROM sanity WHERE model_id = '{mid}'")) > 0
    # the random-weights twin is the baseline of the model quality guards
    q = _q(db, "SELECT model_id FROM model_quality")
    assert any(m.startswith("mine@") for m in q.model_id)
    untrained = models[models.init == "random"]
    assert list(untrained.fine_tuning) == ["untrained"]


@pytest.mark.slow  # end-to-end: reads the as-given run (given_run)
def test_class_order_maps_a_reversed_head(given_run):
    _, _, db, db_rev = given_run
    sql = "SELECT model_id, image_id, pred FROM predictions ORDER BY image_id"
    pred = _q(db, sql)
    mine = pred[pred.model_id.str.startswith("mine@")].reset_index(drop=True)
    raw = pred[pred.model_id.str.startswith("reversed_unmapped@")].reset_index(drop=True)
    rev = _q(db_rev, sql)
    assert len(mine) == len(rev) == len(raw) > 0
    assert list(mine.pred) == list(rev.pred) and list(mine.image_id) == list(rev.image_id)
    acc = {**dict(_q(db, "SELECT label, test_accuracy FROM (SELECT split_part(model_id, '@', 1) AS label, "
                         "test_accuracy FROM models)").values),
           **dict(_q(db_rev, "SELECT split_part(model_id, '@', 1), test_accuracy FROM models").values)}
    assert acc["mine"] == acc["reversed"] is not None
    # mapped, the reversed checkpoint is byte for byte the unreversed one
    sha = _q(db, "SELECT sha256 FROM models WHERE model_id LIKE 'mine@%'").sha256[0]
    assert list(_q(db_rev, "SELECT sha256 FROM models").sha256) == [sha]
    # without class_order the reversed head predicts the mirrored class: the mapping is what made them equal
    assert list(raw.pred) == [len(CLASSES) - 1 - p for p in mine.pred]


@pytest.mark.slow  # end-to-end: `engine run` again on the as-given run
def test_second_run_skips_and_a_moved_file_is_the_same_model(given_run, tmp_path):
    root, exp, db, _ = given_run
    again = run_cli("run", exp, "--db", db)
    assert again.returncode == 0, again.stderr[-2000:]
    assert " 0 jobs done" in again.stdout + again.stderr
    # the same bytes elsewhere: the same model (identity from the bytes, not the path)
    moved = tmp_path / "elsewhere.safetensors"
    shutil.copy(root / "mine.safetensors", moved)
    exp2 = _write(root / "moved", GIVEN.format(weights=moved, extra='label = "mine"'))
    text = exp2.read_text().replace('work_dir = "work"', f'work_dir = "{root / "work"}"')
    exp2.write_text(text)
    out = run_cli("run", exp2, "--db", db)
    assert out.returncode == 0, out.stderr[-2000:]
    assert " 0 jobs done" in out.stdout + out.stderr
    # changed bytes: a new model, run again
    _weights(moved, seed=4)
    out = run_cli("run", exp2, "--db", db)
    assert out.returncode == 0, out.stderr[-2000:]
    assert " 0 jobs done" not in out.stdout + out.stderr
    ids = _q(db, "SELECT model_id FROM models WHERE model_id LIKE 'mine@%'").model_id
    assert len(ids) == 2


@pytest.mark.slow  # end-to-end: `engine run` in a subprocess
def test_head_of_the_wrong_size_is_one_line_before_any_work(tmp_path):
    w = _weights(tmp_path / "five.safetensors", n=5)
    exp = _write(tmp_path, GIVEN.format(weights=w, extra=""))
    db = tmp_path / "r.duckdb"
    out = run_cli("run", exp, "--db", db)
    assert out.returncode == 2
    lines = [line for line in out.stderr.strip().splitlines() if " INFO " not in line]  # generating the data
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert "head has 5 outputs" in lines[0] and "4 classes" in lines[0] and str(w) in lines[0]
    assert not db.exists()


@pytest.mark.parametrize("damage", ["missing", "truncated", "corrupt", "other_arch"])
def test_bad_weights_are_one_line_before_any_work(tmp_path, damage):
    from engine.runner.experiment import load_experiment
    from engine.runner.run import BadInput, validate_run
    w = _weights(tmp_path / "w.safetensors")
    if damage == "missing":
        w.unlink()
    elif damage == "truncated":
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    elif damage == "corrupt":
        w.write_bytes(b"\x00garbage" * 100)
    else:  # a ViT-S state dict named for the demo ViT
        torch.manual_seed(0)
        model, _ = create_model("vit_s16", len(CLASSES), pretrained=False, depth=1)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(w))
    exp = load_experiment(_write(tmp_path, GIVEN.format(weights=w, extra="")))
    with pytest.raises(BadInput) as exc:
        validate_run(exp, tmp_path / "work")
    msg = str(exc.value)
    assert "\n" not in msg and str(w) in msg
    expected = {"missing": "no such file", "truncated": "not a checkpoint", "corrupt": "not a checkpoint",
                "other_arch": "do not fit"}[damage]
    assert expected in msg


def test_experiment_keys_refuse_what_as_given_would_ignore(tmp_path):
    base = {"name": "x", "datasets": [{"name": "d", "generate": "blood_smear"}], "methods": {"attention": {}},
            "metrics": {"pointing_game": {}}}
    bad = [
        ({"name": "vit_demo", "fine_tuning": "as given"}, "needs the weights"),
        ({"name": "vit_demo", "fine_tuning": "as given", "weights": "w.pth", "train": {"epochs": 2}}, "trains nothing"),
        ({"name": "vit_demo", "class_order": ["a"], "weights": "w.pth"}, "class_order would be ignored"),
        ({"name": "vit_demo", "fine_tuning": "fine"}, "fine_tuning"),
    ]
    for entry, words in bad:
        with pytest.raises(ExperimentError, match=words):
            parse_experiment({**base, "models": [entry]}, tmp_path)
    exp = parse_experiment({**base, "models": [{"name": "vit_demo", "fine_tuning": "as given", "weights": "w.pth"}]},
                           tmp_path)
    assert exp.models[0].key == "vit_demo:given"


def test_load_given_checks_head_and_class_order(tmp_path):
    w = _weights(tmp_path / "w.safetensors")
    classes = list(CLASSES)
    model, info = load_given("vit_demo", classes, weights=w)
    ref, _ = create_model("vit_demo", len(classes), weights=w)
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(model(x), ref.eval()(x))
    rev = _weights(tmp_path / "rev.safetensors", reverse=True)
    mapped, _ = load_given("vit_demo", classes, weights=rev, class_order=classes[::-1])
    unmapped, _ = load_given("vit_demo", classes, weights=rev)
    assert torch.equal(mapped(x), model(x)) and torch.equal(unmapped(x), model(x).flip(1))
    with pytest.raises(GivenWeightsError, match="4 outputs but the dataset has 3 classes"):
        load_given("vit_demo", classes[:3], weights=w)
    with pytest.raises(GivenWeightsError, match="missing"):
        class_permutation(classes[:3] + ["other"], classes, "w")
    assert class_permutation(classes[::-1], classes, "w") == [3, 2, 1, 0]
    # a headless backbone cannot be evaluated as given
    torch.manual_seed(0)
    headless, _ = create_model("vit_demo", 0, pretrained=False)
    save_file({k: v.contiguous() for k, v in headless.state_dict().items()}, str(tmp_path / "h.safetensors"))
    with pytest.raises(GivenWeightsError, match="no classification head"):
        load_given("vit_demo", classes, weights=tmp_path / "h.safetensors")


def test_weights_digest_is_the_bytes(tmp_path):
    a = _weights(tmp_path / "a.safetensors")
    b = tmp_path / "b.safetensors"
    shutil.copy(a, b)
    assert weights_digest(a) == weights_digest(b) is not None
    _weights(b, seed=9)
    assert weights_digest(a) != weights_digest(b)
    assert weights_digest(tmp_path / "nothing") is None


@pytest.mark.slow  # end-to-end: `engine run --dry-run` in a subprocess
def test_dry_run_of_a_cuda_experiment_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    w = _weights(tmp_path / "w.safetensors")
    exp = _write(tmp_path, GIVEN.format(weights=w, extra=""))
    exp.write_text('device = "cuda"\n' + exp.read_text())
    out = run_cli("run", exp, "--db", tmp_path / "r.duckdb", "--dry-run")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "device 'cuda': absent on this machine" in out.stdout
    assert f"file {w} -- present; as given" in out.stdout
    assert "to load as given" in out.stdout
    real = run_cli("run", exp, "--db", tmp_path / "r.duckdb")
    assert real.returncode == 2 and "CUDA is not available" in real.stderr


@pytest.mark.slow  # end-to-end: reads the as-given run (given_run)
def test_dashboard_labels_as_given_and_never_averages_it_with_other_models(given_run):
    from engine.dashboard import queries
    from engine.dashboard.leaderboard import by_group, prepare
    _, _, db, _ = given_run
    models = queries.models(str(db))
    assert set(models.fine_tuning) == {"as given", "untrained"}
    did = models.dataset_id.iloc[0]
    board = prepare(queries.leaderboard(str(db), did, "pointing_game", "box"))
    given = board[board.model_id.str.startswith("mine@")]
    assert set(given.strategy) == {"local · as given"} and set(given.arch) == {"vit · as given"}
    groups = by_group(board, "arch", True)
    assert set(groups.arch) == {"vit · as given", "vit · untrained"}
    # the as-given group averages the as-given models only (two, or three after the changed-file rerun)
    g = groups[(groups.arch == "vit · as given") & (groups.label == "saliency")]
    n_given = int((models.fine_tuning == "as given").sum())
    assert g.models.iloc[0] == n_given >= 2
    u = groups[(groups.arch == "vit · untrained") & (groups.label == "saliency")]
    assert u.models.iloc[0] == 1
    summary = queries.method_summary(str(db))
    assert set(summary.fine_tuning) == {"as given", "untrained"}
