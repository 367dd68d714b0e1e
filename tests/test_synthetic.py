"""The demo generator: real files, deterministic, class signal only inside the annotated cell."""
from __future__ import annotations

import csv

import numpy as np
from PIL import Image

from engine.data.annotations import read_voc_boxes
from engine.data.synthetic.smear import CLASSES, SmearConfig, generate_blood_smear, render_smear


def test_files_and_formats(smear_root):
    rows = list(csv.DictReader(open(smear_root / "labels.csv")))
    assert len(rows) == 16 + 8 + 12
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    assert {r["label"] for r in rows} == set(CLASSES)
    r = rows[0]
    img = Image.open(smear_root / "images" / f"{r['image']}.png")
    mask = np.asarray(Image.open(smear_root / "masks" / f"{r['image']}.png"))
    assert img.size == (64, 64) and img.mode == "RGB"
    assert set(np.unique(mask)) <= {0, 128, 255} and (mask == 255).any() and (mask == 128).any()
    boxes = read_voc_boxes(smear_root / "annotations" / f"{r['image']}.xml", ("WBC",))
    assert boxes.shape == (1, 4)
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = boxes[0]
    # the WBC box encloses the whole cell mask
    assert x0 <= xs.min() and xs.max() + 1 <= x1 and y0 <= ys.min() and ys.max() + 1 <= y1
    assert len(read_voc_boxes(smear_root / "annotations" / f"{r['image']}.xml")) > 1  # RBC boxes too


def test_deterministic(tmp_path):
    cfg = SmearConfig(n_train=4, n_val=0, n_test=0, seed=3)
    a = generate_blood_smear(tmp_path / "a", cfg, progress=False)
    b = generate_blood_smear(tmp_path / "b", cfg, progress=False)
    for f in sorted((a / "images").iterdir()):
        assert (b / "images" / f.name).read_bytes() == f.read_bytes()
    assert (a / "labels.csv").read_text() == (b / "labels.csv").read_text()


def test_class_signal_only_inside_cell():
    """Same random stream, different class: every pixel outside the cell is identical."""
    cfg = SmearConfig()
    out = {}
    for label in CLASSES:
        rgb, mask, _, _ = render_smear(label, cfg, np.random.default_rng(42))
        out[label] = (rgb, mask)
    cell = out[CLASSES[0]][1] > 0
    for label in CLASSES[1:]:
        rgb, mask = out[label]
        assert np.array_equal(mask > 0, cell)  # same cell outline
        assert np.array_equal(rgb[~cell], out[CLASSES[0]][0][~cell])
        assert not np.array_equal(mask, out[CLASSES[0]][1])  # nuclei differ


def test_manifest_reuse(tmp_path):
    cfg = SmearConfig(n_train=2, n_val=0, n_test=0)
    root = generate_blood_smear(tmp_path, cfg, progress=False)
    stamp = (root / "labels.csv").stat().st_mtime_ns
    generate_blood_smear(tmp_path, cfg, progress=False)
    assert (root / "labels.csv").stat().st_mtime_ns == stamp
