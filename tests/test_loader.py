"""Loader rules: transforms move boxes and masks with the image; bad input gets a clear error."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.data import DatasetError, DatasetSpec, ImageDataset, collate_samples, fingerprint, load_records
from engine.data.annotations import read_voc_boxes
from engine.data.transforms import box_from_mask, compute_geometry, rasterise_boxes, transform_image, transform_mask


def test_resize_geometry_hand_computed():
    g = compute_geometry(100, 50, 10, "resize")
    np.testing.assert_allclose(g.map_boxes([[10, 5, 60, 25]]), [[1.0, 1.0, 6.0, 5.0]])


def test_letterbox_geometry_hand_computed():
    g = compute_geometry(100, 50, 10, "letterbox")  # scale 0.1 -> 10 x 5, padded 2 rows on top (floor(5/2))
    assert (g.content_w, g.content_h, g.left, g.top) == (10, 5, 0, 2)
    np.testing.assert_allclose(g.map_boxes([[10, 5, 60, 25]]), [[1.0, 2.5, 6.0, 4.5]])
    img = transform_image(Image.new("RGB", (100, 50), (255, 255, 255)), g)
    assert img[:2].max() == 0 and img[7:].max() == 0 and img[2:7].min() == 1.0


def test_mask_and_box_move_together():
    """A mask and its box, transformed separately, still coincide (letterbox, odd sizes)."""
    m = np.zeros((30, 50), bool)
    m[10:20, 20:40] = True
    g = compute_geometry(50, 30, 25, "letterbox")
    tm = transform_mask(m, g)
    tb = rasterise_boxes(g.map_boxes(box_from_mask(m)), 25)
    assert np.array_equal(tm, tb)


def test_rasterise_pixel_centres():
    r = rasterise_boxes(np.array([[1.0, 0.5, 3.0, 2.4]]), 4)  # cols 1,2 ; rows with centre in [0.5, 2.4): 0.5,1.5
    expect = np.zeros((4, 4), bool)
    expect[0:2, 1:3] = True
    assert np.array_equal(r, expect)
    assert not rasterise_boxes(np.zeros((0, 4)), 4).any()


def test_voc_one_based_and_class_filter(tmp_path):
    xml = tmp_path / "a.xml"
    xml.write_text("<annotation><object><name>WBC</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax>"
                   "<ymax>20</ymax></bndbox></object><object><name>RBC</name><bndbox><xmin>5</xmin><ymin>5</ymin>"
                   "<xmax>6</xmax><ymax>6</ymax></bndbox></object><object><name>WBC</name><bndbox><xmin>7</xmin>"
                   "<ymin>7</ymin><xmax>6</xmax><ymax>9</ymax></bndbox></object></annotation>")
    np.testing.assert_allclose(read_voc_boxes(xml, ("WBC",)), [[0, 1, 10, 20]])  # degenerate WBC dropped
    assert len(read_voc_boxes(xml)) == 2


def test_loader_regions_aligned(smear_spec):
    ds = ImageDataset(smear_spec, "test")
    s = ds[0]
    assert s.image.shape == (3, 64, 64) and 0 <= s.image.min() and s.image.max() <= 1
    assert set(s.regions) == {"mask", "box"}
    mask, box = s.regions["mask"], s.regions["box"]
    assert mask.any() and (mask & ~box).sum() == 0  # the cell lies inside its box
    batch = collate_samples([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 64, 64) and batch["regions"]["mask"].dtype == torch.bool


def _table(tmp_path, text, **kw):
    (tmp_path / "labels.csv").write_text(text)
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    return DatasetSpec(name="t", root=str(tmp_path), labels="labels.csv", image_template="{id}.png", **kw)


def test_header_variants(tmp_path):
    spec = _table(tmp_path, "Image ID,Class\na,x\nb,y\n")
    recs, classes = load_records(spec)
    assert classes == ("x", "y") and [r.label for r in recs] == [0, 1]


@pytest.mark.parametrize("text, needle", [
    ("file,label\na,x\n", "no image id column"),
    ("image,label\na,\n", "line 2 has a missing image id or label"),
    ("image,label\na,x\na,x\n", "listed twice"),
    ("image,label\n", "no images listed"),
    ("image,label,split\na,x,holdout\n", "split values ['holdout']"),
])
def test_bad_tables(tmp_path, text, needle):
    spec = _table(tmp_path, text, split_column="split" if "split" in text else None)
    with pytest.raises(DatasetError, match=None) as exc:
        load_records(spec)
    assert needle in str(exc.value) and "labels.csv" in str(exc.value)


def test_unknown_label_and_path_escape(tmp_path):
    spec = _table(tmp_path, "image,label\na,x\n", classes=("y",))
    with pytest.raises(DatasetError, match="not among the configured classes"):
        load_records(spec)
    spec = _table(tmp_path, "image,label\n../../etc/passwd,x\n")
    with pytest.raises(DatasetError, match="outside the dataset root"):
        load_records(spec)


def test_corrupt_image_and_wrong_mask_size(tmp_path):
    spec = _table(tmp_path, "image,label\na,x\nb,x\n", mask_template="{id}_m.png", mask_regions=(("mask", (255,)),),
                  split_fractions=(1.0, 0.0, 0.0))
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.new("L", (8, 8)).save(tmp_path / "a_m.png")
    Image.new("L", (9, 8)).save(tmp_path / "b_m.png")
    ds = ImageDataset(spec)
    with pytest.raises(DatasetError, match=r"a\.png: not a readable image"):
        ds[0]
    with pytest.raises(DatasetError, match=r"b_m\.png: mask is 9x8 but its image is 8x8"):
        ds[1]


def test_drawn_split_is_seeded_and_per_image(tmp_path):
    lines = "image,label\n" + "".join(f"i{k},{'a' if k < 20 else 'b'}\n" for k in range(21))
    (tmp_path / "labels.csv").write_text(lines)
    spec = DatasetSpec(name="t", root=str(tmp_path), labels="labels.csv", image_template="{id}.png")
    recs, _ = load_records(spec)
    assert [r.split for r in load_records(spec)[0]] == [r.split for r in recs]  # seeded
    # each image's split is the hash rule applied to its own id (engine.data.splits)
    from engine.data.splits import hash_split
    assert [r.split for r in recs] == [hash_split(r.image_id, spec.split_fractions, 0) for r in recs]


def test_fingerprint_changes_with_annotations(smear_spec, smear_root, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(smear_root, copy)
    spec2 = smear_spec.__class__(**{**smear_spec.to_dict(), "root": str(copy)})
    r1, _ = load_records(smear_spec)
    r2, _ = load_records(spec2)
    assert fingerprint(r1, smear_spec) == fingerprint(r2, spec2)  # moved, same content
    xml = sorted((copy / "annotations").iterdir())[0]
    xml.write_text(xml.read_text().replace("<xmin>", "<xmin>1", 1))
    assert fingerprint(r2, spec2) != fingerprint(r1, smear_spec)
