"""Annotation formats (COCO, YOLO, CSV boxes, several masks), box_from_mask, and the scored subset."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.data import DatasetSpec, ImageDataset, load_records, select_scored
from engine.data.coco import decode_rle_counts, polygons_to_mask, rle_to_mask
from engine.data.ground_truth import read_ground_truth


def encode_rle_counts(counts: list[int]) -> str:
    """The COCO compressed RLE text encoding, written from the format's description (test helper)."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if c & 0x10 else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def _dataset(tmp_path, ids, size=(20, 10), **spec):
    lines = "".join(f"{i},{lab}\n" for i, lab in ids)
    (tmp_path / "labels.csv").write_text("image,label\n" + lines)
    for i, _ in ids:
        Image.new("RGB", size, (90, 90, 90)).save(tmp_path / f"{i}.png")
    d = {"name": "t", "root": str(tmp_path), "labels": "labels.csv", "image_template": "{id}.png",
         "input_size": 20, "split_fractions": [1.0, 0.0, 0.0], **spec}
    return DatasetSpec.from_dict(d)


# ---------------------------------------------------------------- COCO

def test_rle_hand_made_and_round_trip():
    # 2x2, column-major runs: 1 zero, 2 ones, 1 zero -> [[0, 1], [1, 0]]
    assert decode_rle_counts("121") == [1, 2, 1]
    np.testing.assert_array_equal(rle_to_mask({"size": [2, 2], "counts": "121"}), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(rle_to_mask({"size": [2, 2], "counts": [1, 2, 1]}), [[0, 1], [1, 0]])
    rng = np.random.default_rng(0)
    for _ in range(20):
        counts = rng.integers(0, 3000, size=rng.integers(1, 12)).tolist()
        assert decode_rle_counts(encode_rle_counts(counts)) == counts
    with pytest.raises(ValueError, match="run lengths sum to 3"):
        rle_to_mask({"size": [2, 2], "counts": [1, 2]})


def test_polygon_mask():
    m = polygons_to_mask([[2, 1, 6, 1, 6, 4, 2, 4]], 8, 6)
    assert m[1:5, 2:7].all() and m.sum() == 20  # PIL fills the closed outline: 5 x 4 pixels


def test_coco_boxes_polygons_rle_and_class_filter(tmp_path):
    rle = np.zeros((10, 20), bool)
    rle[6:9, 10:15] = True
    flat = rle.T.ravel()  # column-major
    runs, cur, n = [], False, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    coco = {"images": [{"id": 1, "file_name": "imgs/a.png", "width": 20, "height": 10},
                       {"id": 2, "file_name": "b.png", "width": 20, "height": 10}],
            "categories": [{"id": 1, "name": "lesion"}, {"id": 2, "name": "ruler"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 3],
                 "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]]},
                {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 6, 5, 3],
                 "segmentation": {"size": [10, 20], "counts": encode_rle_counts(runs)}},
                {"id": 3, "image_id": 1, "category_id": 2, "bbox": [15, 0, 5, 2], "segmentation": []},
                {"id": 4, "image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1]}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    spec = _dataset(tmp_path, [("a", "x"), ("b", "x")], boxes_format="coco", boxes_file="coco.json",
                    box_classes=["lesion"], segmentation_region="lesion_mask", box_from_mask="lesion_mask",
                    image_template="imgs/{id}.png")
    (tmp_path / "imgs").mkdir()
    for n in ("a", "b"):  # COCO names a as imgs/a.png and b by its bare file name
        (tmp_path / f"{n}.png").rename(tmp_path / f"imgs/{n}.png")
    recs, _ = load_records(spec)
    gt = read_ground_truth(recs[0], spec, (20, 10))
    np.testing.assert_allclose(gt.boxes, [[1, 1, 5, 4], [10, 6, 15, 9]])  # the ruler is filtered out
    assert gt.masks["lesion_mask"][6:9, 10:15].all() and gt.masks["lesion_mask"][1:4, 1:5].all()
    assert not gt.masks["lesion_mask"][:, 16:].any()
    b = read_ground_truth(recs[1], spec, (20, 10))  # listed in COCO without annotations
    assert len(b.boxes) == 0 and not b.annotated
    s = ImageDataset(spec, records=recs, classes=("x",))[0]
    assert set(s.regions) == {"box", "lesion_mask", "box_from_mask"}
    assert s.regions["box"].sum() == 2 * (12 + 15)  # input 20 x 20: rows scale by 2


# ---------------------------------------------------------------- YOLO, CSV boxes

def test_yolo_normalised_and_class_filter(tmp_path):
    spec = _dataset(tmp_path, [("a", "x"), ("b", "x")], boxes_format="yolo", boxes_template="{id}.txt",
                    yolo_names=["lesion", "ruler"], box_classes=["lesion"])
    (tmp_path / "a.txt").write_text("0 0.25 0.5 0.5 0.4\n1 0.9 0.1 0.1 0.1\n\n0 0.5 0.5 0.1 0.2 0.2 0.3 0.1 0.3\n")
    recs, _ = load_records(spec)
    gt = read_ground_truth(recs[0], spec, (20, 10))
    # cx 0.25 w 0.5 on 20 px -> x 0..10 ; cy 0.5 h 0.4 on 10 px -> y 3..7 ; polygon -> its bounding box
    np.testing.assert_allclose(gt.boxes, [[0, 3, 10, 7], [2, 2, 10, 5]])
    by_id = DatasetSpec(**{**spec.to_dict(), "box_classes": ("1",)})
    np.testing.assert_allclose(read_ground_truth(recs[0], by_id, (20, 10)).boxes, [[17, 0.5, 19, 1.5]])
    assert len(read_ground_truth(recs[1], spec, (20, 10)).boxes) == 0  # no label file: no objects


@pytest.mark.parametrize("coords, cols, row", [("xyxy", None, "2,1,6,5"), ("xywh", ["left", "top", "w", "h"],
                                                                            "2,1,4,4")])
def test_csv_boxes_several_per_image(tmp_path, coords, cols, row):
    spec = _dataset(tmp_path, [("a", "x"), ("b", "x")], boxes_format="csv", boxes_file="boxes.csv",
                    box_coords=coords, box_class_column="kind", box_classes=["wbc"],
                    **({"box_columns": cols} if cols else {}))
    head = ",".join(cols) if cols else "x0,y0,x1,y1"
    (tmp_path / "boxes.csv").write_text(f"image,kind,{head}\na,wbc,{row}\na,wbc,10,0,12,2\na,rbc,0,0,3,3\n"
                                        if coords == "xyxy" else
                                        f"image,kind,{head}\na,wbc,{row}\na,wbc,10,0,2,2\na,rbc,0,0,3,3\n")
    recs, _ = load_records(spec)
    np.testing.assert_allclose(read_ground_truth(recs[0], spec, (20, 10)).boxes, [[2, 1, 6, 5], [10, 0, 12, 2]])
    assert len(read_ground_truth(recs[1], spec, (20, 10)).boxes) == 0
    s = ImageDataset(spec)[0]
    assert s.regions["box"].sum() == 4 * 8 + 2 * 4  # union of the two WBC boxes, rows doubled


def test_several_masks_per_image_union(tmp_path):
    spec = _dataset(tmp_path, [("a", "x")], mask_template="{id}_m*.png", mask_regions={"lesion": [255]},
                    box_from_mask="lesion")
    m1, m2 = np.zeros((10, 20), np.uint8), np.zeros((10, 20), np.uint8)
    m1[0:2, 0:2], m2[5:10, 15:20] = 255, 255
    Image.fromarray(m1).save(tmp_path / "a_m1.png")
    Image.fromarray(m2).save(tmp_path / "a_m2.png")
    (rec,), _ = load_records(spec)
    assert len(rec.more_masks) == 1
    gt = read_ground_truth(rec, spec, (20, 10))
    assert gt.masks["lesion"].sum() == 4 + 25
    s = ImageDataset(spec)[0]
    assert s.regions["box_from_mask"].all()  # the union's box spans the whole image


# ---------------------------------------------------------------- scored subset

def test_select_scored_defaults_limit_and_seed(tmp_path):
    ids = [(f"i{k}", "pos" if k % 3 else "neg") for k in range(30)]
    spec = _dataset(tmp_path, ids, boxes_template="{id}.xml", split_fractions=[0.0, 0.0, 1.0])
    for k in range(30):
        obj = "" if k % 5 == 0 else ("<object><name>L</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>5</xmax>"
                                     "<ymax>5</ymax></bndbox></object>")
        (tmp_path / f"i{k}.xml").write_text(f"<annotation>{obj}</annotation>")
    recs, classes = load_records(spec)
    assert {r.split for r in recs} == {"test"}
    all_gt = select_scored(recs, spec)
    assert [r.image_id for r in all_gt] == [f"i{k}" for k in range(30) if k % 5]  # only annotated, in order
    pos = DatasetSpec(**{**spec.to_dict(), "score_classes": ("pos",), "score_limit": 5, "score_seed": 1})
    a, b = select_scored(recs, pos), select_scored(recs, pos)
    assert [r.image_id for r in a] == [r.image_id for r in b] and len(a) == 5
    assert all(r.label_name == "pos" and int(r.image_id[1:]) % 5 for r in a)
    other = DatasetSpec(**{**pos.to_dict(), "score_seed": 2})
    assert [r.image_id for r in select_scored(recs, other)] != [r.image_id for r in a]
    every = DatasetSpec(**{**spec.to_dict(), "score_only_annotated": False, "score_split": "train"})
    assert select_scored(recs, every) == []


def test_voc_declared_size_mismatch_is_reported(tmp_path):
    from engine.data.check import check_dataset
    spec = _dataset(tmp_path, [("a", "x")], boxes_template="{id}.xml")
    (tmp_path / "a.xml").write_text("<annotation><size><width>40</width><height>10</height></size><object>"
                                    "<name>L</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>5</xmax><ymax>5</ymax>"
                                    "</bndbox></object></annotation>")
    rep = check_dataset(spec)
    assert [p.reason for p in rep.problems if "a.xml" in p.file] == [
        "declares a 40x10 image but the image is 20x10; boxes used as given"]


def test_region_names_without_reading_files(tmp_path):
    from engine.data import Record, region_names
    spec = _dataset(tmp_path, [("a", "x")], mask_template="{id}_m*.png", mask_regions={"nucleus": [255], "cell": [128]},
                    box_from_mask="nucleus", boxes_template="{id}.xml")
    rec = Record("a", 0, "test", tmp_path / "a.png", tmp_path / "a_m.png", tmp_path / "a.xml")
    assert region_names(rec, spec) == ["nucleus", "cell", "box_from_mask", "box"]
    assert region_names(Record("b", 0, "test", tmp_path / "b.png"), spec) == []


def test_glob_masks_under_a_root_with_glob_characters(tmp_path):
    root = tmp_path / "set [v2]"
    root.mkdir()
    spec = _dataset(root, [("a", "x")], mask_template="{id}_m*.png", mask_regions={"lesion": [255]})
    Image.fromarray(np.full((10, 20), 255, np.uint8)).save(root / "a_m1.png")
    (rec,), _ = load_records(spec)
    assert rec.mask_path == (root / "a_m1.png").resolve()
