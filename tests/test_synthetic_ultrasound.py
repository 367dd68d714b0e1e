"""Ultrasound-like and confounded demo generators: files, determinism, where the class signal lies."""
from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from engine.data import ImageDataset, collate_samples, load_records
from engine.data.annotations import read_voc_boxes
from engine.data.synthetic.confounded import MARKER, ConfoundedConfig, confounded_spec, generate_confounded, marker_plan
from engine.data.synthetic.ultrasound import (
    CLASSES,
    LESION,
    UltrasoundConfig,
    generate_ultrasound,
    render_ultrasound,
    ultrasound_spec,
)

SMALL = UltrasoundConfig(n_train=24, n_val=9, n_test=15)
CONF = ConfoundedConfig(ultrasound=UltrasoundConfig(n_train=120, n_val=30, n_test=90))


@pytest.fixture(scope="module")
def us_root(tmp_path_factory):
    return generate_ultrasound(tmp_path_factory.mktemp("us"), SMALL, progress=False)


@pytest.fixture(scope="module")
def conf_root(tmp_path_factory):
    return generate_confounded(tmp_path_factory.mktemp("conf"), CONF, progress=False)


def _rows(root):
    return list(csv.DictReader(open(root / "labels.csv")))


def _mask(root, image_id):
    return np.asarray(Image.open(root / "masks" / f"{image_id}.png"))


def _dilate(m: np.ndarray) -> np.ndarray:
    """3 x 3 dilation (the anti-aliased rim around a mask)."""
    p = np.pad(m, 1)
    return np.any([p[1 + dy:1 + dy + m.shape[0], 1 + dx:1 + dx + m.shape[1]]
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)


def test_files_masks_and_boxes_agree(us_root):
    rows = _rows(us_root)
    assert len(rows) == 24 + 9 + 15
    assert Counter((r["split"], r["label"]) for r in rows) == {(s, c): n // 3 for s, n in
                                                               (("train", 24), ("val", 9), ("test", 15))
                                                               for c in CLASSES}
    for r in rows:
        img = Image.open(us_root / "images" / f"{r['image']}.png")
        assert img.size == (64, 64) and img.mode == "L"
        mask = _mask(us_root, r["image"])
        boxes = read_voc_boxes(us_root / "annotations" / f"{r['image']}.xml")
        assert set(np.unique(mask)) <= {0, LESION}
        if r["label"] == "normal":
            assert not mask.any() and boxes.shape == (0, 4)
            continue
        ys, xs = np.nonzero(mask == LESION)
        assert boxes.tolist() == [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]  # the mask's tight box


def test_deterministic_and_cached(tmp_path):
    cfg = UltrasoundConfig(n_train=6, n_val=0, n_test=0, seed=5)
    a = generate_ultrasound(tmp_path / "a", cfg, progress=False)
    b = generate_ultrasound(tmp_path / "b", cfg, progress=False)
    for sub in ("images", "masks", "annotations"):
        for f in sorted((a / sub).iterdir()):
            assert (b / sub / f.name).read_bytes() == f.read_bytes()
    assert (a / "labels.csv").read_text() == (b / "labels.csv").read_text()
    stamp = (a / "labels.csv").stat().st_mtime_ns
    generate_ultrasound(tmp_path / "a", cfg, progress=False)
    assert (a / "labels.csv").stat().st_mtime_ns == stamp  # manifest matched: not rewritten
    other = generate_ultrasound(tmp_path / "a", UltrasoundConfig(n_train=6, n_val=0, n_test=0, seed=6),
                                progress=False)
    assert (other / "images" / "train_00000.png").read_bytes() != (b / "images" / "train_00000.png").read_bytes()


@pytest.mark.parametrize("seed", range(6))
def test_classes_differ_only_at_the_lesion(seed):
    """Same stream, different class: identical outside the lesion (its rim, and for malignant the
    acoustic shadow in the columns straight below it)."""
    cfg = UltrasoundConfig()
    out = {c: render_ultrasound(c, cfg, np.random.default_rng([9, seed])) for c in CLASSES}
    normal = out["normal"][0]
    for label in ("benign", "malignant"):
        img, mask, box = out[label]
        lesion = mask == LESION
        footprint = _dilate(lesion)
        if label == "malignant":
            cols = lesion.any(axis=0) | _dilate(lesion).any(axis=0)
            footprint |= (np.arange(64)[:, None] >= box[1]) & cols[None, :]
        assert np.array_equal(img[~footprint], normal[~footprint])
        assert np.abs(img[lesion].astype(int) - normal[lesion]).mean() > 20  # the lesion is visible
    assert not np.array_equal(out["benign"][1], out["malignant"][1])  # shapes differ
    # malignant lesions are darker and shadow the tissue below them
    b, m = out["benign"], out["malignant"]
    assert m[0][m[1] == LESION].mean() < b[0][b[1] == LESION].mean()
    below = (np.arange(64)[:, None] >= m[2][3] + 2) & (m[1] == LESION).any(axis=0)[None, :]
    assert m[0][below].mean() < 0.85 * normal[below].mean()


def test_ultrasound_loads(us_root):
    spec = ultrasound_spec(us_root)
    records, classes = load_records(spec)
    assert classes == CLASSES
    ds = ImageDataset(spec, "train", records=records, classes=classes)
    batch = collate_samples([ds[i] for i in range(len(ds))])
    assert batch["image"].shape == (24, 3, 64, 64)
    assert set(batch["regions"]) == {"lesion", "box"}
    has = batch["regions"]["lesion"].flatten(1).any(1)
    assert has.tolist() == [classes[y] != "normal" for y in batch["label"].tolist()]
    assert (batch["regions"]["lesion"] <= batch["regions"]["box"]).all()


def test_marker_correlated_in_train_not_in_test(conf_root):
    rows = _rows(conf_root)
    seen = {}
    for r in rows:
        mask = _mask(conf_root, r["image"])
        assert set(np.unique(mask)) <= {0, MARKER, LESION}
        has = bool((mask == MARKER).any())
        assert has == (r["marker"] == "1")
        if has:  # annotated as its own VOC object, matching the mask
            box = read_voc_boxes(conf_root / "annotations" / f"{r['image']}.xml", ("marker",))
            ys, xs = np.nonzero(mask == MARKER)
            assert box.tolist() == [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]
        seen.setdefault((r["split"], r["label"]), []).append(has)
    rate = {k: float(np.mean(v)) for k, v in seen.items()}
    for split in ("train", "val"):
        assert rate[(split, "malignant")] >= 0.85
        assert rate[(split, "benign")] <= 0.1 and rate[(split, "normal")] <= 0.1
    test_rates = [rate[("test", c)] for c in CLASSES]
    assert max(test_rates) - min(test_rates) < 1e-9  # no association with the class
    assert abs(test_rates[0] - CONF.overall_rate) < 0.05
    # phi coefficient between "marker" and "malignant": strong in train, zero in test
    for split, lo, hi in (("train", 0.8, 1.0), ("test", -1e-9, 1e-9)):
        x = np.array([r["marker"] == "1" for r in rows if r["split"] == split], float)
        y = np.array([r["label"] == "malignant" for r in rows if r["split"] == split], float)
        assert lo <= np.corrcoef(x, y)[0, 1] <= hi


def test_marker_never_overlaps_lesion_and_rest_is_the_plain_set(conf_root, tmp_path):
    plain = generate_ultrasound(tmp_path, CONF.ultrasound, progress=False)
    plan = marker_plan(CONF)
    for r in _rows(conf_root):
        i = int(r["image"].split("_")[1])
        a = np.asarray(Image.open(conf_root / "images" / f"{r['image']}.png"))
        b = np.asarray(Image.open(plain / "images" / f"{r['image']}.png"))
        mask = _mask(conf_root, r["image"])
        marker = mask == MARKER
        assert marker.any() == plan[i]
        assert not (_dilate(marker) & (_mask(plain, r["image"]) == LESION)).any()
        assert np.array_equal(a[~marker], b[~marker])


def test_confounded_loads_with_both_regions(conf_root):
    spec = confounded_spec(conf_root)
    ds = ImageDataset(spec, "test")
    batch = collate_samples([ds[i] for i in range(len(ds))])
    assert set(batch["regions"]) == {"lesion", "marker", "box"}
    assert not (batch["regions"]["lesion"] & batch["regions"]["marker"]).any()
    frac = batch["regions"]["marker"].flatten(1).float().mean(1)
    assert 0 < frac.max() < 0.05  # a small corner label


def test_config_validation():
    with pytest.raises(ValueError, match="marker_class"):
        ConfoundedConfig(marker_class="cyst")
    with pytest.raises(ValueError, match="marker_rate_class"):
        ConfoundedConfig(marker_rate_class=1.5)
