"""One clear line for every bad input: a corpus of bad experiment and dataset files, generated here, each
run through ``python -m engine run`` (in-process: ``engine.cli.main``) and, where the problem is in a
dataset or the file itself, ``check-data``.  Each must end with exit status 2 and one line (no
traceback) naming the file or key, before any work: no database is written."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main

DATASET = {"name": "ds", "root": "ds", "labels": "labels.csv", "image_template": "images/{id}",
           "boxes_format": "csv", "boxes_file": "boxes.csv", "input_size": 64,
           "split_seed": 5}  # 4 train, 3 val, 1 test images of the 8: a run that can train and score
BASE = {"name": "bad-input", "work_dir": "work", "datasets": [DATASET],
        "models": [{"name": "vit_demo", "train": {"epochs": 1, "batch_size": 4}}],
        "methods": {"attention": {}}, "metrics": {"pointing_game": {}}}


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(map(_value, v)) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {_value(x)}" for k, x in v.items()) + " }"


def to_toml(exp: dict) -> str:
    """TOML text of an experiment dict (top-level scalars, [[datasets]] / [[models]] blocks, tables)."""
    top, blocks, tables = [], [], []
    for k, v in exp.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for block in v:
                blocks.append(f"[[{k}]]\n" + "".join(f"{json.dumps(a)} = {_value(b)}\n" for a, b in block.items()))
        elif isinstance(v, dict):
            tables.append(f"[{k}]\n" + "".join(f"{json.dumps(a)} = {_value(b)}\n" for a, b in v.items()))
        else:
            top.append(f"{json.dumps(k)} = {_value(v)}\n")
    return "".join(top) + "\n".join(blocks + tables)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """``ds/``: 8 images of 2 classes with CSV boxes, plus the bad files the cases point at."""
    base = tmp_path_factory.mktemp("badinput")
    img = base / "ds" / "images"
    img.mkdir(parents=True)
    rows = []
    for i in range(8):
        Image.new("RGB", (64, 64), (30 * i, 80, 120)).save(img / f"a{i}.png")
        rows.append(f"a{i}.png,{'ab'[i % 2]}")
    (base / "ds" / "labels.csv").write_text("image,label\n" + "\n".join(rows) + "\n")
    (base / "ds" / "boxes.csv").write_text("image,x0,y0,x1,y1\n" + "".join(f"a{i}.png,2,2,30,30\n" for i in range(8)))
    (base / "ds" / "empty.csv").write_text("image,label\n")
    ghosts = "".join(f"ghost{i}.png,{'ab'[i % 2]}\n" for i in range(8))
    (base / "ds" / "ghosts.csv").write_text("image,label\n" + ghosts)
    (base / "ds" / "noid.csv").write_text("file name,label\n" + "\n".join(rows) + "\n")
    (base / "ds" / "latin1.csv").write_bytes("image,label\nbébé.png,a\n".encode("latin-1"))
    notimg = base / "ds" / "notimg"
    notimg.mkdir()
    for i in range(8):
        (notimg / f"a{i}.png").write_text("this is not an image\n")
    (base / "ds" / "link.csv").symlink_to("/etc/hostname")
    (base / "text.safetensors").write_text("not a checkpoint\n")
    (base / "a_file").write_text("a file, not a folder\n")
    return base


def ds(**kw) -> dict:
    """BASE with the dataset block changed (a value None removes the key)."""
    block = {k: v for k, v in {**DATASET, **kw}.items() if v is not None}
    return {**BASE, "datasets": [block]}


def model(**kw) -> dict:
    m = {k: v for k, v in {**BASE["models"][0], **kw}.items() if v is not None}
    return {**BASE, "models": [m]}


GEN = {"name": "gen", "generate": "blood_smear", "params": {"n_train": 4, "n_val": 2, "n_test": 2}}

# (id, experiment dict or raw bytes / "<folder>" / "<missing>", expected text, check-data: 2 / 1 / None)
CASES = [
    # the file itself
    ("missing-file", "<missing>", "no such experiment file", 2),
    ("path-is-a-folder", "<folder>", "is a folder", 2),
    ("not-utf8", b'name = "caf\xe9"\n', "not UTF-8", 2),
    ("not-toml", b"name = \n[[datasets\n", "not valid TOML", 2),
    ("empty-file", b"", "name: Field required", 2),
    ("unknown-top-key", {**BASE, "epochz": 3}, "epochz: unknown key", 2),
    ("name-escapes-logs", {**BASE, "name": "../../../../tmp/x"}, "must be a plain name", 2),
    ("name-dotdot", {**BASE, "name": ".."}, "must be a plain name", 2),
    ("name-empty", {**BASE, "name": ""}, "non-empty", 2),
    ("seed-not-int", {**BASE, "seed": "zero"}, "seed", 2),
    ("batch-size-zero", {**BASE, "batch_size": 0}, "batch_size", 2),
    ("device-unknown", {**BASE, "device": "tpu"}, "'tpu' is not a device", 2),
    ("no-models", {**BASE, "models": []}, "models", 2),
    ("no-datasets", {**BASE, "datasets": []}, "datasets", 2),
    # models
    ("epochs-zero", model(train={"epochs": 0}), "epochs = 0: must be at least 1", 2),
    ("epochs-negative", model(train={"epochs": -3}), "epochs = -3: must be at least 1", 2),
    ("lr-zero", model(train={"lr": 0.0}), "lr = 0.0: must be greater than 0", 2),
    ("train-batch-text", model(train={"batch_size": "big"}), "batch_size = 'big' is not an integer", 2),
    ("train-unknown-key", model(train={"epoch": 2}), "unknown train key(s) ['epoch']", 2),
    ("grid-empty", model(grid={"lr": []}), "every grid key needs at least one value", 2),
    ("grid-bad-value", model(grid={"lr": [0.1, "fast"]}), "grid.lr = 'fast' is not a number", 2),
    ("weights-on-random-init", model(init="random", train=None, weights="text.safetensors"), "would be ignored", 2),
    ("train-on-random-init", model(init="random"), "would be ignored: init = 'random'", 2),
    ("pretrain-params-without-pretrain", model(pretrain_params={"steps": 5}), "would be ignored without pretrain", 2),
    ("weights-and-pretrain", model(pretrain="dino", weights="text.safetensors"), "pretrain starts from its own", 2),
    ("weights-and-pretrained", model(weights="text.safetensors", pretrained=True), "wins over the hub", 2),
    ("weights-not-a-checkpoint", model(weights="text.safetensors"), "is not a checkpoint", None),
    ("weights-missing", model(weights="nope.safetensors"), "no such file", None),
    ("model-unknown", model(name="vit_nonexistent_xyz"), "unknown model 'vit_nonexistent_xyz'", None),
    ("model-methods-unknown", model(methods=["rollout"]), "methods ['rollout'] are not in [methods]", 2),
    ("labels-duplicate", {**BASE, "models": [BASE["models"][0], BASE["models"][0]]}, "models must differ", 2),
    # methods and metrics
    ("layer-deep", {**BASE, "methods": {"attention": {"layer": "deep"}}}, "layer = 'deep' is not an integer", 2),
    ("method-unknown", {**BASE, "methods": {"attentoin": {}}}, "unknown method 'attentoin'", 2),
    ("method-param-unknown", {**BASE, "methods": {"attention": {"depth": 2}}}, "unknown parameter(s) ['depth']", 2),
    ("method-params-not-table", {**BASE, "methods": {"attention": 3}}, "methods.attention", 2),
    ("n-steps-zero", {**BASE, "metrics": {"insertion_auc": {"n_steps": 0}}}, "n_steps = 0: must be at least 1", 2),
    ("metric-unknown", {**BASE, "metrics": {"pointing": {}}}, "unknown metric 'pointing'", 2),
    ("metric-is-a-sanity-check", {**BASE, "metrics": {"mprt": {}}}, "configure it under [sanity]", 2),
    ("sanity-methods-unknown", {**BASE, "sanity": {"methods": ["rollout"]}}, "sanity.methods ['rollout']", 2),
    ("regions-unknown", {**BASE, "regions": ["nucleus"]}, "regions ['nucleus'] are in no dataset", None),
    # folders
    ("work-dir-is-a-file", {**BASE, "work_dir": "a_file"}, "work_dir is not a writable folder", None),
    ("checkpoints-is-a-file", {**BASE, "checkpoints": "../a_file"}, "checkpoints folder is not a writable folder",
     None),
    # generated datasets
    ("generator-unknown", {**BASE, "datasets": [{**GEN, "generate": "mri"}]}, "generate = 'mri'", 2),
    ("generator-param-unknown", {**BASE, "datasets": [{**GEN, "params": {"n_trian": 4}}]}, "unknown key 'n_trian'",
     2),
    ("generator-param-type", {**BASE, "datasets": [{**GEN, "params": {"n_train": "many"}}]},
     "params.n_train = 'many' is not an integer", 2),
    ("generator-param-negative", {**BASE, "datasets": [{**GEN, "params": {"n_train": -5}}]},
     "n_train = -5: must not be negative", 2),
    ("generator-size-huge", {**BASE, "datasets": [{**GEN, "params": {"size": 1_000_000}}]},
     "at most 2048 pixels per side", 2),
    ("generator-params-not-table", {**BASE, "datasets": [{**GEN, "params": 3}]}, "params must be a table", 2),
    ("dataset-name-escapes", {**BASE, "datasets": [{**GEN, "name": "../../../tmp/g"}]}, "must be a plain name", 2),
    # dataset files and keys
    ("root-missing", ds(root="nowhere"), "dataset root not found", 1),
    ("zero-images", ds(labels="empty.csv"), "no images listed", 1),
    ("labels-missing", ds(labels="nope.csv"), "labels table not found", 1),
    ("labels-not-utf8", ds(labels="latin1.csv"), "not a readable text table", 1),
    ("labels-no-id-column", ds(labels="noid.csv"), "no image id column", 1),
    ("labels-rows-do-not-resolve", ds(labels="ghosts.csv"), "name image files that do not exist", 1),
    ("images-are-not-images", ds(image_template="notimg/{id}"), "none of 5 sampled images can be read", None),
    ("boxes-file-escapes", ds(boxes_file="../../../../etc/passwd"), "'boxes_file': '../../../../etc/passwd' lies "
                                                                    "outside the dataset root", 2),
    ("boxes-file-absolute", ds(boxes_file="/etc/passwd"), "'boxes_file': '/etc/passwd' lies outside", 2),
    # a labels table may lie outside the root (issue 24.7): what it says is checked, not where it is
    ("labels-outside-missing", ds(labels="../../labels.csv"), "labels.csv: labels table not found", 1),
    ("labels-symlink-out", ds(labels="link.csv"), "link.csv: no image id column", 1),
    ("images-dir-escapes", ds(layout="folders", labels=None, images_dir="../.."), "'images_dir': '../..' lies", 2),
    ("split-files-escape", ds(split_files="../../{split}.txt"), "'split_files': '../../{split}.txt' lies", 2),
    ("image-template-absolute", ds(image_template="/etc/{id}"), "'image_template': '/etc/{id}' lies outside", 2),
    ("mask-template-escapes", ds(mask_template="../../{stem}.png", mask_regions={"lesion": [255]}),
     "'mask_template': '../../{stem}.png' lies outside", 2),
    ("boxes-template-escapes", ds(boxes_format="voc", boxes_file=None, boxes_template="../{stem}.xml"),
     "'boxes_template': '../{stem}.xml' lies outside", 2),
    ("input-size-huge", ds(input_size=1_000_000), "input_size': 1000000 is above the maximum 2048", 2),
    ("input-size-zero", ds(input_size=0), "input_size': expected an integer >= 1", 2),
    ("input-size-not-the-models", ds(input_size=224), "input_size = 224 but model 'vit_demo:trained'", None),
    ("dataset-unknown-key", ds(labelz="labels.csv"), "unknown key(s) 'labelz' (did you mean 'labels'?)", 2),
    ("classes-repeated", ds(classes=["a", "a"]), "repeated class names", 2),
    ("split-fractions", ds(split_fractions=[0.5, 0.5, 0.5]), "split_fractions", 2),
    ("mask-template-without-regions", ds(mask_template="masks/{stem}.png"), "mask_regions': required", 2),
    ("boxes-format-unknown", ds(boxes_format="xml"), "'xml' is not one of", 2),
    ("table-without-labels", ds(labels=None), "'labels': required with layout = 'table'", 2),
    ("template-unknown-field", ds(image_template="images/{name}"), "uses ['name']", 2),
    ("template-malformed", ds(image_template="images/{id"), "malformed template", 2),
    ("max-pixels-zero", ds(max_pixels=0), "max_pixels", 2),
    ("score-classes-unknown", ds(classes=["a", "b"], score_classes=["c"]), "score_classes", 2),
    ("dataset-models-unknown", ds(models=["vit_b16"]), "models ['vit_b16'] are not among", 2),
]


def _write(folder: Path, case_id: str, spec) -> Path:
    if spec == "<missing>":
        return folder / "missing.toml"
    if spec == "<folder>":
        return folder / "ds"
    path = folder / f"{case_id}.toml"
    path.write_bytes(spec if isinstance(spec, bytes) else to_toml(spec).encode())
    return path


def cli(argv: list[str], capsys) -> tuple[int, str]:
    """``main(argv)`` in this process (its signal handlers restored afterwards); (status, stdout + stderr)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        rc = main(argv)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_base_experiment_is_valid(folder):
    """The corpus's starting point passes every check, so each case fails for its own change only."""
    from engine.runner.experiment import load_experiment
    from engine.runner.run import validate_run
    path = _write(folder, "base", BASE)
    exp = load_experiment(path)
    prepared, stopped = validate_run(exp, exp.resolve(exp.work_dir))
    assert [len(d.records) for d in prepared] == [8] and stopped == []


def test_the_corpus_is_large():
    assert len(CASES) >= 57 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id, spec, expect, check_data", CASES, ids=[c[0] for c in CASES])
def test_run_refuses_in_one_line(folder, tmp_path, capsys, case_id, spec, expect, check_data):
    path = _write(folder, case_id, spec)
    db = tmp_path / "r.duckdb"
    rc, out = cli(["run", str(path), "--db", str(db), "--no-progress"], capsys)
    lines = out.strip().splitlines()
    assert rc == 2, out
    assert len(lines) == 1 and "Traceback" not in out, out
    assert lines[0].startswith("error: ") and expect in lines[0], (expect, lines[0])
    assert str(path.name) in lines[0] or str(path) in lines[0]
    assert not db.exists(), "nothing is published for bad input"
    if check_data is None:
        return
    rc, out = cli(["check-data", str(path)], capsys)
    assert "Traceback" not in out and rc == check_data, out
    if check_data == 2:  # one line naming the file (the wording of a file-level problem may differ from run's)
        line = out.strip()
        assert len(line.splitlines()) == 1 and line.startswith("error") and path.name in line, out
    else:  # a data problem: check-data's report lists it as an error
        assert any(ln.lstrip().startswith("error") and expect in ln for ln in out.splitlines()), out


def test_work_dir_flag_that_is_a_file_is_refused(folder, tmp_path, capsys):
    path = _write(folder, "base-flag", BASE)
    rc, out = cli(["run", str(path), "--db", str(tmp_path / "r.duckdb"), "--work-dir", str(folder / "a_file")],
                  capsys)
    assert rc == 2 and len(out.strip().splitlines()) == 1 and "not a writable folder" in out, out


def test_a_large_table_of_missing_files_stops_fast(folder, tmp_path, capsys):
    """200,000 rows naming files that do not exist: refused from a sample of rows, before any split,
    per-row resolution or publishing (the check itself is what is timed: loosely)."""
    import time

    from engine.data import DatasetError, DatasetSpec, load_records
    root = tmp_path / "big"
    root.mkdir()
    with open(root / "labels.csv", "w") as fh:
        fh.write("image,label\n")
        fh.writelines(f"img{i:06d}.png,{'ab'[i % 2]}\n" for i in range(200_000))
    (root / "img000001.png").write_bytes(b"")  # one row resolves: not enough
    spec = DatasetSpec.from_dict({"name": "big", "root": str(root), "labels": "labels.csv"})
    t0 = time.monotonic()
    with pytest.raises(DatasetError, match=r"labels\.csv: \d+ of 200 sampled rows name image files that do not "
                                           r"exist \(e\.g\. .*img\d{6}\.png\); check root and image_template"):
        load_records(spec, check_files=True)
    assert time.monotonic() - t0 < 30  # seconds on a loaded 2-core machine; the full path took minutes


def test_a_minority_of_missing_files_is_kept_for_the_run_to_report(folder, tmp_path):
    """A few missing images are per-item failures of the run (reported by check-data), not a refusal."""
    from engine.data import DatasetSpec, load_records
    root = folder / "ds"
    (tmp_path / "ok").mkdir()
    spec = DatasetSpec.from_dict({**DATASET, "root": str(root), "labels": "labels.csv", "boxes_file": "boxes.csv"})
    records, _ = load_records(spec, check_files=True)
    assert len(records) == 8
    rows = (root / "labels.csv").read_text() + "ghost.png,a\n"
    (root / "some-missing.csv").write_text(rows)
    spec = DatasetSpec.from_dict({**DATASET, "root": str(root), "labels": "some-missing.csv"})
    assert len(load_records(spec, check_files=True)[0]) == 9


def test_dry_run_names_a_bad_dataset_without_a_traceback(folder, tmp_path, capsys):
    """The dry run reports what the run would refuse (one line, exit 2, as the run), never a traceback."""
    path = _write(folder, "dry-run-root", ds(root="nowhere"))
    rc, out = cli(["run", str(path), "--db", str(tmp_path / "r.duckdb"), "--dry-run"], capsys)
    assert rc == 2 and "Traceback" not in out and "the run would refuse it" in out, out
    assert "dataset root not found" in out and len(out.strip().splitlines()) == 1, out
    path = _write(folder, "dry-run-input-size", ds(input_size=224))  # refused by the run: the dry run says so
    rc, out = cli(["run", str(path), "--db", str(tmp_path / "r.duckdb"), "--dry-run"], capsys)
    assert rc == 2 and "input_size = 224 but model 'vit_demo:trained'" in out, out
    path = _write(folder, "dry-run-toml", b"name = \n")
    rc, out = cli(["run", str(path), "--db", str(tmp_path / "r.duckdb"), "--dry-run"], capsys)
    assert rc == 2 and len(out.strip().splitlines()) == 1 and "not valid TOML" in out, out
