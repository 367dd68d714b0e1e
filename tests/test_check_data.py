"""The example dataset configs (data/datasets/*.toml) load the real WBC and BCCD data, and check-data
reports them correctly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import PROJECT_ROOT, shared_data

from engine.data import ImageDataset, load_dataset_config, load_records, select_scored
from engine.data.check import check_data_command, check_dataset

CONFIGS = PROJECT_ROOT / "data" / "datasets"


def test_wbc_config_loads_both_datasets():
    root = shared_data("wbc")
    wbc1, wbc2 = load_dataset_config(CONFIGS / "wbc.toml")
    assert Path(wbc1.root) == root.resolve() == Path(wbc2.root)  # relative to the TOML file's folder
    r1, c1 = load_records(wbc1)
    r2, c2 = load_records(wbc2)
    assert c1 == c2 == ("neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil")
    assert (len(r1), len(r2)) == (300, 100)
    assert [r.label for r in r1].count(0) == 176 and [r.split for r in r1 if r.label == 4] == ["train"]
    s = ImageDataset(wbc1, "test", records=r1, classes=c1)[0]
    assert set(s.regions) == {"nucleus", "cell", "box_from_mask"} and s.image.shape == (3, 224, 224)
    nuc, cell, box = s.regions["nucleus"], s.regions["cell"], s.regions["box_from_mask"]
    assert nuc.any() and (nuc & ~cell).sum() <= 4 and (nuc & ~box).sum() == 0


def test_bccd_config_voc_class_filter_and_union():
    shared_data("bccd")
    (spec,) = load_dataset_config(CONFIGS / "bccd.toml")
    recs, classes = load_records(spec)
    assert classes == ("negative", "positive") and len(recs) == 364
    assert sum(r.label for r in recs) == 358  # 6 smears have no WBC box
    assert [sum(r.split == s for r in recs) for s in ("train", "val", "test")] == [205, 87, 72]  # ImageSets
    scored = select_scored(recs, spec, classes)
    assert len(scored) == 68 and all(r.split == "test" and r.label == 1 for r in scored)
    ds = ImageDataset(spec, records=recs, classes=classes)
    multi = [i for i, r in enumerate(recs) if r.boxes_path.read_text().count("<name>WBC</name>") == 2][0]
    s = ds[multi]
    assert set(s.regions) == {"box"} and s.size == (640, 480)
    # the union of two WBC boxes: no RBC box is in it (RBC boxes are filtered out)
    from engine.data.annotations import read_voc_boxes
    from engine.data.transforms import compute_geometry, rasterise_boxes
    geo = compute_geometry(640, 480, 224, "letterbox")
    wbc = read_voc_boxes(recs[multi].boxes_path, ("WBC",))
    assert len(wbc) == 2
    expect = rasterise_boxes(geo.map_boxes(wbc[:1]), 224) | rasterise_boxes(geo.map_boxes(wbc[1:]), 224)
    assert np.array_equal(s.regions["box"].numpy(), expect)


def test_check_data_on_wbc(capsys):
    shared_data("wbc")
    assert check_data_command(str(CONFIGS / "wbc.toml")) == 0  # the README's command: stray mask pixels are notes
    out = capsys.readouterr().out
    assert "dataset 'wbc1': 300 images, 5 classes" in out and "dataset 'wbc2': 100 images, 5 classes" in out
    assert "  neutrophil      131     18     27    176" in out  # drawn per image id (engine.data.splits)
    assert "with annotations: 300; without: 0" in out and "with annotations: 100; without: 0" in out
    assert "class 'basophil' has 1 image(s), none in val or test" in out
    assert out.count("mask has unexpected values") == 5 and "Dataset 2/034.png" in out
    assert "problems: 0 errors, 0 warnings, 1 notes" in out and "problems: 0 errors, 0 warnings, 8 notes" in out
    assert "on 97 pixels (0.11% of the mask" in out and "check-data: no problems found" in out


def test_check_data_on_bccd(capsys):
    shared_data("bccd")
    assert check_data_command(str(CONFIGS / "bccd.toml")) == 0
    out = capsys.readouterr().out
    assert "dataset 'bccd_wbc': 364 images, 2 classes" in out
    assert "  negative        1      1      4      6" in out and "  positive      204     86     68    358" in out
    assert "with annotations: 358; without: 6" in out and "scored: 68 images (split test, positive" in out
    assert "check-data: no problems found" in out


def test_check_dataset_without_class_filter_reports_tiny_boxes():
    """Without the WBC filter, the two 1-pixel RBC boxes of BCCD are reported (kept)."""
    shared_data("bccd")
    (spec,) = load_dataset_config(CONFIGS / "bccd.toml")
    spec = spec.__class__(**{**spec.to_dict(), "box_classes": ()})
    rep = check_dataset(spec)
    small = [p for p in rep.problems if "implausibly small" in p.reason]
    assert sorted(Path(p.file).name for p in small) == ["BloodImage_00338.xml", "BloodImage_00343.xml"]
    assert rep.count("error") == 0


def _two_source_set(root: Path, n: int = 80) -> Path:
    """A labels table over PNGs from two sources: source A (64 x 64) holds 90 % of the positives, B (96 x 80)
    90 % of the negatives; the pixels are noise of one brightness for both classes."""
    from PIL import Image
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    lines = ["image,label,split"]
    for k in range(n):
        label = k % 2
        w, h = (64, 64) if rng.random() < (0.9 if label else 0.1) else (96, 80)
        Image.fromarray(rng.integers(90, 160, (h, w, 3), dtype=np.uint8)).save(root / "images" / f"i{k:03d}.png")
        lines.append(f"i{k:03d},{'positive' if label else 'negative'},{'test' if k % 4 in (0, 1) else 'train'}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_check_data_flags_a_set_whose_image_size_predicts_the_label(tmp_path):
    from engine.data import DatasetSpec
    spec = DatasetSpec.from_dict({"name": "two_sources", "root": str(_two_source_set(tmp_path)), "layout": "table",
                                  "labels": "labels.csv", "image_template": "images/{id}.png",
                                  "split_column": "split"})
    report = check_dataset(spec)
    assert report.shortcut is not None and report.shortcut.flagged
    text = report.format()
    assert "shortcut check: the label is predictable from " in text and " alone (balanced accuracy " in text
    assert any(p.severity == "warning" and "predictable from" in p.reason for p in report.problems)
