"""Datasets as users have them: splits that do not move, detection-only data, loud spec mistakes, the
docs' examples on generated trees (class folders + sibling mask folder; YOLO without labels)."""
from __future__ import annotations

import hashlib
import io
import re
import shutil

import numpy as np
import pytest
from conftest import PROJECT_ROOT
from layout_trees import EXAMPLES, class_folder_tree, yolo_tree
from PIL import Image

from engine.data import DatasetError, DatasetSpec, ImageDataset, load_dataset_config, load_records
from engine.data.check import check_data_command, check_dataset
from engine.data.splits import hash_split, unit_hash
from engine.data.transforms import compute_geometry, transform_mask


def _spec(path, **changes) -> DatasetSpec:
    (spec,) = load_dataset_config(path)
    return DatasetSpec.from_dict({**spec.to_dict(), **changes}) if changes else spec


def _check(path, **kw) -> tuple[int, str]:
    out = io.StringIO()
    return check_data_command(str(path), out=out, **kw), out.getvalue()


# -- splits -----------------------------------------------------------------------------------
def test_hash_split_by_hand():
    digest = hashlib.sha256(b"7\x00benign/b001.png").digest()
    u = int.from_bytes(digest[:8], "big") / 2 ** 64
    assert unit_hash("benign/b001.png", 7) == u
    assert hash_split("benign/b001.png", (0.7, 0.15, 0.15), 7) == ("test" if u < 0.15 else "val" if u < 0.3
                                                                   else "train")
    assert hash_split("x", (1.0, 0.0, 0.0), 0) == "train" and hash_split("x", (0.0, 0.0, 1.0), 0) == "test"


def test_hash_split_fractions_on_average():
    ids = [f"img{k}" for k in range(6000)]
    splits = [hash_split(i, (0.6, 0.25, 0.15), 3) for i in ids]
    for name, f in (("train", 0.6), ("val", 0.25), ("test", 0.15)):
        assert abs(splits.count(name) / len(ids) - f) < 0.02


def test_split_stability_adding_breaking_removing_files(tmp_path):
    """Adding, breaking or removing files moves no other image between splits."""
    spec_path = class_folder_tree(tmp_path)
    before = {r.image_id: r.split for r in load_records(_spec(spec_path))[0]}
    (tmp_path / "images/benign/zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.new("RGB", (64, 64)).save(tmp_path / "images/malignant/zz_new.png")
    (tmp_path / "images/normal/n003.png").unlink()
    spec = _spec(spec_path)
    after = {r.image_id: r.split for r in load_records(spec)[0]}
    assert set(after) == set(before) - {"normal/n003.png"} | {"benign/zz_broken.png", "malignant/zz_new.png"}
    assert all(after[i] == s for i, s in before.items() if i in after)
    # and check-data reads the broken file as one error, the other images untouched
    report = check_dataset(spec)
    assert report.unreadable == 1 and {r.image_id: r.split for r in report.records} == after
    # another seed draws another split; the same seed the same one
    other = {r.image_id: r.split for r in load_records(_spec(spec_path, split_seed=5))[0]}
    assert other != after and other == {r.image_id: r.split for r in load_records(_spec(spec_path, split_seed=5))[0]}


def test_fingerprint_covers_the_splits(tmp_path):
    from dataclasses import replace

    from engine.data import fingerprint
    spec = _spec(class_folder_tree(tmp_path))
    recs, _ = load_records(spec)
    moved = [replace(r, split="test" if r.split != "test" else "train") if k == 0 else r for k, r in enumerate(recs)]
    assert fingerprint(moved, spec) != fingerprint(recs, spec) == fingerprint(load_records(spec)[0], spec)


def test_groups_keep_together_and_split_from_group_id(tmp_path):
    for i in range(30):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{i}.png")
    (tmp_path / "l.csv").write_text("image,label,patient\n" + "".join(f"{i},{'ab'[i % 2]},P{i // 3}\n"
                                                                      for i in range(30)))
    spec = DatasetSpec.from_dict({"name": "g", "root": str(tmp_path), "labels": "l.csv", "image_template": "{id}.png",
                                  "group_column": "patient", "split_seed": 2})
    recs, _ = load_records(spec)
    assert all(r.split == hash_split(r.group, spec.split_fractions, 2) for r in recs)


def test_splits_out_and_splits_csv_round_trip(tmp_path):
    spec_path = class_folder_tree(tmp_path)
    rc, out = _check(spec_path, splits_out=tmp_path / "published.csv")
    assert rc == 0 and "splits of 36 images written to" in out
    lines = (tmp_path / "published.csv").read_text().splitlines()
    assert lines[0] == "image_id,label,group,split" and len(lines) == 37
    drawn = {r.image_id: r.split for r in load_records(_spec(spec_path))[0]}
    # another seed, but the split read from the published file: the published split
    read = {r.image_id: r.split for r in load_records(_spec(spec_path, split_seed=9,
                                                            splits_csv="published.csv"))[0]}
    assert read == drawn
    (tmp_path / "bad.csv").write_text("image_id,split\nbenign/b000.png,holdout\n")
    with pytest.raises(DatasetError, match=r"bad\.csv: line 2: split 'holdout' of 'benign/b000.png'"):
        load_records(_spec(spec_path, splits_csv="bad.csv"))


# -- the docs' examples on generated trees --------------------------------------------------------
def test_docs_examples_are_the_tested_files():
    """Every TOML block of docs/datasets.md is (the body of) a file that a test runs."""
    docs = (PROJECT_ROOT / "docs/datasets.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", docs, re.S)
    files = [p.read_text() for p in [*EXAMPLES.glob("*.toml"), *(PROJECT_ROOT / "data/datasets").glob("*.toml")]]
    assert len(blocks) >= 4
    for b in blocks:
        assert any(b.strip() in f for f in files), f"docs/datasets.md example not in a tested file:\n{b}"
    for name in ("class_folders_masks.toml", "yolo_detection.toml"):
        assert (EXAMPLES / name).read_text().split("[dataset]")[1].strip() in docs


def test_class_folder_example_checks_clean_with_multi_and_empty_masks(tmp_path):
    spec_path = class_folder_tree(tmp_path)
    rc, out = _check(spec_path)
    assert rc == 0, out
    assert "36 images, 3 classes" in out and "with annotations: 24; without: 12" in out
    spec = _spec(spec_path, input_size=64)
    recs, classes = load_records(spec)
    assert classes == ("benign", "malignant", "normal")
    two = next(r for r in recs if r.image_id == "benign/b000.png")
    assert two.mask_path.name == "b000_mask.png" and [p.name for p in two.more_masks] == ["b000_mask_1.png"]
    ds = ImageDataset(spec, records=recs, classes=classes)
    s = ds[recs.index(two)]
    assert list(s.regions) == ["tumour", "box_from_mask"] == list(spec.region_list)
    # the scored tumour region is the union of both mask files
    union = np.zeros((64, 64), bool)
    for p in (two.mask_path, *two.more_masks):
        union |= np.asarray(Image.open(p)) == 255
    assert np.array_equal(s.regions["tumour"].numpy(), transform_mask(union, compute_geometry(64, 64, 64, "resize")))
    normal = ds[next(k for k, r in enumerate(recs) if r.label_name == "normal")]
    assert not normal.regions["tumour"].any()  # an empty mask: no region, not an error


def test_yolo_example_labels_from_boxes_and_box_regions(tmp_path):
    spec_path = yolo_tree(tmp_path)
    rc, out = _check(spec_path)
    assert rc == 0 and "problems: 0 errors, 0 warnings, 0 notes" in out, out  # sub-pixel overflow: silent
    spec = _spec(spec_path, input_size=64)
    recs, classes = load_records(spec)
    assert classes == ("no_platelets", "platelets")
    assert [r.label_name for r in recs] == ["platelets" if k % 2 == 0 else "no_platelets" for k in range(36)]
    s = ImageDataset(spec, records=recs, classes=classes)[0]
    assert list(s.regions) == ["wbc", "platelets"] and s.regions["wbc"].sum() > s.regions["platelets"].sum() > 0
    # the class of the largest box instead: the WBC in every image
    largest = _spec(spec_path, label_from_boxes="largest")
    recs, classes = load_records(largest)
    assert classes == ("WBC", "RBC", "Platelets") and {r.label_name for r in recs} == {"WBC"}


def test_yolo_real_overflow_is_a_warning(tmp_path):
    spec_path = yolo_tree(tmp_path, n=8)
    (tmp_path / "labels/s001.txt").write_text("0 0.990000 0.500000 0.100000 0.200000\n")  # 2.9 px outside
    (tmp_path / "labels/s002.txt").write_text("0 0.960000 0.500000 0.080000 0.200000\n")  # exactly at the edge
    rc, out = _check(spec_path)
    assert rc == 1 and out.count("extends outside the 64x64 image; clipped") == 1 and "s001.txt" in out


# -- loud mistakes ----------------------------------------------------------------------------
def test_mask_template_matching_nothing_fails_in_one_line(tmp_path):
    spec_path = class_folder_tree(tmp_path)
    text = spec_path.read_text().replace('"masks/{dir}/{stem}_mask*.png"', '"masks/{stem}_mask*.png"')
    spec_path.write_text(text)
    rc, out = _check(spec_path)
    errors = [ln for ln in out.splitlines() if ln.strip().startswith("error")]
    assert rc == 1 and len(errors) == 1
    assert "mask_template 'masks/{stem}_mask*.png' matches no file for any of the 36 images" in errors[0]
    assert "e.g. tried " + str(tmp_path / "masks/b000_mask*.png") in errors[0]
    # matching nothing for some images stays per image: a note each, those images have no mask region
    spec_path.write_text(text.replace('"masks/{stem}_mask*.png"', '"masks/{dir}/{stem}_mask*.png"'))
    for p in (tmp_path / "masks/benign").glob("b00[0-3]_mask*.png"):
        p.unlink()
    rc, out = _check(spec_path)
    assert rc == 0 and out.count("no file matches mask_template") == 4, out
    rec = next(r for r in load_records(_spec(spec_path))[0] if r.image_id == "benign/b001.png")
    assert rec.mask_path is None


def test_boxes_template_matching_nothing_fails(tmp_path):
    spec_path = yolo_tree(tmp_path, n=6)
    spec_path.write_text(spec_path.read_text().replace("labels/{stem}.txt", "label/{stem}.txt"))
    rc, out = _check(spec_path)
    assert rc == 1 and "boxes_template 'label/{stem}.txt' matches no file for any of the 6 images" in out


def test_images_that_are_also_masks_name_the_exclude_option(tmp_path):
    class_folder_tree(tmp_path)
    for p in (tmp_path / "masks").rglob("*.png"):  # masks beside the images, no exclude
        shutil.move(p, tmp_path / "images" / p.parent.name / p.name)
    spec = tmp_path / "s.toml"
    spec.write_text('[dataset]\nname = "b"\nroot = "."\nlayout = "folders"\nimages_dir = "images"\n'
                    'mask_template = "images/{dir}/{stem}_mask*.png"\nmask_regions = { tumour = [255] }\n')
    rc, out = _check(spec)
    assert rc == 1 and "are also mask files of the mask_template" in out and "set exclude" in out
    spec.write_text(spec.read_text() + 'exclude = ["*_mask*"]\n')
    assert _check(spec)[0] == 0


def test_symlinked_folder_refused_once_or_followed(tmp_path):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    spec_path = class_folder_tree(root)
    shutil.move(root / "images/malignant", elsewhere)
    (root / "images/malignant").symlink_to(elsewhere, target_is_directory=True)
    rc, out = _check(spec_path)
    errors = [ln for ln in out.splitlines() if ln.strip().startswith("error")]
    assert rc == 1 and len(errors) == 1 and "symbolic link inside the dataset root" in errors[0]
    assert "set follow_symlinks = true" in errors[0] and "images/malignant" in errors[0]
    spec_path.write_text(spec_path.read_text() + "follow_symlinks = true\n")
    rc, out = _check(spec_path)
    assert rc == 0, out
    spec = _spec(spec_path, input_size=64)
    recs, _ = load_records(spec)
    assert sum(r.label_name == "malignant" for r in recs) == 12
    # paths through the link stay under the root: the fingerprint, the stored paths and the dashboard work
    import json

    from engine.dashboard.images import load_stored_sample
    from engine.data import fingerprint
    fingerprint(recs, spec)
    r = next(r for r in recs if r.label_name == "malignant")
    rel = str(r.image_path.relative_to(root.resolve()))
    assert rel.startswith("images/malignant/")
    shown = load_stored_sample(str(root), json.dumps(spec.to_dict()), r.image_id, r.label, rel,
                               str(r.mask_path.relative_to(root.resolve())), None)
    assert shown.regions["tumour"].any()
    # through the link and out again ('..' after the link): still refused
    (elsewhere / "up").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "secret.png").write_bytes(b"")
    from engine.data.paths import confine
    with pytest.raises(DatasetError, match="lies outside the dataset root"):
        confine(root / "images/malignant/up/secret.png", root.resolve(), True, "t")


def test_input_size_mismatch_names_both_keys(tmp_path):
    from engine.runner.units import check_input_size
    spec = _spec(class_folder_tree(tmp_path))  # input_size = 224
    with pytest.raises(DatasetError, match=r"input_size = 224 but model 'vit_demo' takes 64 px inputs \(its "
                                           r"img_size\); set input_size = 64"):
        check_input_size(spec, "vit_demo")
    check_input_size(_spec(tmp_path / "class_folders_masks.toml", input_size=64), "vit_demo")


# -- real detection data ----------------------------------------------------------------------------
def test_bccd_as_detection_only_data(tmp_path):
    """BCCD (Pascal VOC) with no label table and no split files: the label from the boxes, two named box
    regions, splits drawn per image id; check-data clean."""
    from conftest import shared_data

    from engine.data.annotations import read_voc_boxes
    from engine.data.ground_truth import read_ground_truth
    shared_data("bccd")
    spec_path = EXAMPLES / "bccd_detection.toml"
    rc, out = _check(spec_path)
    assert rc == 0 and "dataset 'bccd_platelets': 364 images, 2 classes" in out, out
    spec = _spec(spec_path)
    recs, classes = load_records(spec)
    assert classes == ("no_platelets", "platelets")
    for r in recs[:20]:
        has = len(read_voc_boxes(r.boxes_path, ("Platelets",))) > 0
        assert r.label_name == ("platelets" if has else "no_platelets")
        gt = read_ground_truth(r, spec)
        assert gt.boxes is None and set(gt.box_sets) == {"wbc", "platelets"}
        assert len(gt.box_sets["wbc"]) == len(read_voc_boxes(r.boxes_path, ("WBC",)))
    assert all(r.split == hash_split(r.image_id, spec.split_fractions, 0) for r in recs)


@pytest.mark.parametrize("patch, needle", [
    ({"layout": "images"}, "key 'label_from_boxes': required with layout = 'images'"),
    ({"layout": "images", "label_from_boxes": "biggest", "boxes_template": "l/{stem}.txt"},
     "'biggest' is not 'largest' or a table"),
    ({"layout": "images", "label_from_boxes": "largest", "boxes_template": "l/{stem}.txt"},
     "'largest' needs the box class names"),
    ({"layout": "images", "label_from_boxes": {"p": ["P"]}}, "key 'label_from_boxes': needs box annotations"),
    ({"layout": "images", "label_from_boxes": {"p": ["P"]}, "boxes_template": "l/{stem}.txt",
      "classes": ["a", "b", "c"]}, "label_from_boxes gives 2 classes"),
    ({"box_regions": {"wbc": []}, "boxes_template": "l/{stem}.txt"}, "key 'box_regions': expected a table"),
    ({"box_regions": {"tumour": ["T"]}, "boxes_template": "l/{stem}.txt", "mask_template": "m/{id}",
      "mask_regions": {"tumour": [255]}}, "region names ['tumour'] are already used"),
    ({"splits_csv": "s.csv", "split_column": "split"}, "give only one of split_files, split_column and splits_csv"),
    ({"follow_symlinks": "yes"}, "key 'follow_symlinks': expected true or false"),
])
def test_new_keys_are_validated(tmp_path, patch, needle):
    from engine.data import SpecError
    with pytest.raises(SpecError) as exc:
        DatasetSpec.from_dict({"name": "x", "root": str(tmp_path), "labels": "l.csv", **patch})
    assert needle in str(exc.value), str(exc.value)


def test_dry_run_names_a_dataset_the_run_would_stop(tmp_path, capsys):
    from layout_trees import HEADER

    from engine.runner.experiment import load_experiment
    from engine.runner.plan import dry_run
    spec_path = class_folder_tree(tmp_path / "tree")
    block = spec_path.read_text().replace("[dataset]", "[[datasets]]").replace(
        'root = "."', f'root = "{spec_path.parent.as_posix()}"').replace("input_size = 224", "input_size = 64")
    exp = tmp_path / "exp.toml"
    exp.write_text(HEADER + block.replace('"masks/{dir}/{stem}_mask*.png"', '"mask/{dir}/{stem}_mask*.png"'))
    assert dry_run(load_experiment(exp), tmp_path / "r.duckdb") == 1
    out = capsys.readouterr().out
    assert "dataset 'breast_us' would be stopped:" in out and "matches no file for any of the 36 images" in out


@pytest.mark.slow  # end-to-end: `engine check-data` in a subprocess
def test_check_data_on_an_experiment_names_an_input_size_the_model_cannot_take(tmp_path):
    from layout_trees import HEADER
    from runner_fixtures import run_cli
    spec_path = class_folder_tree(tmp_path / "tree")
    block = spec_path.read_text().replace("[dataset]", "[[datasets]]").replace(
        'root = "."', f'root = "{spec_path.parent.as_posix()}"')  # input_size = 224; vit_demo takes 64
    exp = tmp_path / "exp.toml"
    exp.write_text(HEADER + block)
    res = run_cli("check-data", exp)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "error   dataset 'breast_us': input_size = 224 but model 'vit_demo' takes 64 px inputs" in res.stdout
    exp.write_text(HEADER + block.replace("input_size = 224", "input_size = 64"))
    assert run_cli("check-data", exp).returncode == 0
