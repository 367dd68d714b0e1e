"""Image formats and the dataset spec: hand-made fixtures with hand-computed expectations."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.data import DatasetError, DatasetSpec, ImageDataset, SpecError, load_dataset_config, load_records
from engine.data.images_io import read_image
from engine.data.transforms import compute_geometry, transform_image


def make_dicom(path, arr=None, photometric="MONOCHROME2", **tags):
    """A minimal uncompressed DICOM file; ``arr=None`` gives one without pixel data."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    if arr is not None:
        ds.Rows, ds.Columns = arr.shape
        ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 16, 15
        ds.PixelRepresentation = 0
        ds.PhotometricInterpretation = photometric
        ds.PixelData = np.asarray(arr, np.uint16).tobytes()
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.save_as(path, enforce_file_format=True)
    return path


# ---------------------------------------------------------------- images

def test_16bit_tiff_and_png_scaled_not_clipped(tmp_path):
    import tifffile
    a = np.array([[0, 1000], [32768, 65535]], np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", a)
    Image.fromarray(a).save(tmp_path / "a.png")
    for name in ("a.tif", "a.png"):
        x = read_image(tmp_path / name)
        assert x.dtype == np.float32 and x.shape == (2, 2, 3)
        np.testing.assert_allclose(x[..., 1], a / 65535.0, atol=1e-6)
    x = read_image(tmp_path / "a.tif", intensity="minmax")
    assert x.min() == 0.0 and x.max() == 1.0
    # float images go through the float resampler; a flat 16-bit image stays flat at its value
    flat = np.full((10, 20), 30000, np.uint16)
    tifffile.imwrite(tmp_path / "f.tif", flat)
    out = transform_image(read_image(tmp_path / "f.tif"), compute_geometry(20, 10, 8, "resize"))
    np.testing.assert_allclose(out, 30000 / 65535, atol=1e-5)


def test_rgba_alpha_modes(tmp_path):
    a = np.zeros((1, 2, 4), np.uint8)
    a[0, 0] = (200, 100, 50, 255)  # opaque
    a[0, 1] = (200, 100, 50, 0)  # transparent
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    drop = read_image(tmp_path / "a.png")
    assert drop.dtype == np.uint8 and drop[0, 1].tolist() == [200, 100, 50]
    assert read_image(tmp_path / "a.png", alpha="black")[0].tolist() == [[200, 100, 50], [0, 0, 0]]
    assert read_image(tmp_path / "a.png", alpha="white")[0].tolist() == [[200, 100, 50], [255, 255, 255]]


def test_palette_grayscale_bmp_jpeg(tmp_path):
    p = Image.new("P", (3, 1))
    p.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    p.putdata([0, 1, 2])
    p.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png")[0].tolist() == [[0, 0, 0], [255, 0, 0], [0, 255, 0]]
    Image.fromarray(np.array([[7, 200]], np.uint8), "L").save(tmp_path / "g.bmp")
    assert read_image(tmp_path / "g.bmp")[0].tolist() == [[7, 7, 7], [200, 200, 200]]
    Image.new("RGB", (16, 16), (10, 120, 240)).save(tmp_path / "c.jpg", quality=95)
    assert np.abs(read_image(tmp_path / "c.jpg").astype(int) - [10, 120, 240]).max() <= 3


def test_dicom_window_rescale_and_monochrome1(tmp_path):
    arr = np.arange(16, dtype=np.uint16).reshape(4, 4) * 100
    make_dicom(tmp_path / "a.dcm", arr, WindowCenter=750, WindowWidth=1000)
    x = read_image(tmp_path / "a.dcm")[..., 0]  # window [250, 1250]
    assert x[0, 2] == 0 and x[0, 3] == pytest.approx(0.05) and x[3, 1] == 1
    make_dicom(tmp_path / "m.dcm", arr, WindowCenter=[750, 100], WindowWidth=[1000, 50])  # several: the first
    np.testing.assert_array_equal(read_image(tmp_path / "m.dcm")[..., 0], x)
    # rescale first (HU = 2 * v - 1000), then the window in rescaled units
    make_dicom(tmp_path / "b.dcm", arr, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=0, WindowWidth=400)
    y = read_image(tmp_path / "b.dcm")[..., 0]  # v=400 -> -200 -> 0 ; v=500 -> 0 -> 0.5 ; v=600 -> 200 -> 1
    assert (y[1, 0], y[1, 1], y[1, 2]) == (0.0, 0.5, 1.0)
    make_dicom(tmp_path / "c.dcm", arr, photometric="MONOCHROME1")  # no window tags: min-max, inverted
    z = read_image(tmp_path / "c.dcm")[..., 0]
    assert z[0, 0] == 1.0 and z[3, 3] == 0.0
    # DICOM magic without the extension
    (tmp_path / "d.img").write_bytes((tmp_path / "a.dcm").read_bytes())
    np.testing.assert_array_equal(read_image(tmp_path / "d.img")[..., 0], x)


def test_dicom_without_pixels(tmp_path):
    make_dicom(tmp_path / "sr.dcm")
    with pytest.raises(DatasetError, match=r"sr\.dcm: DICOM file has no pixel data"):
        read_image(tmp_path / "sr.dcm")


# ---------------------------------------------------------------- spec validation and config files

def test_from_dict_validates_and_normalises(tmp_path):
    d = {"name": "w", "root": str(tmp_path), "labels": "l.csv", "id_column": "image ID",
         "mask_template": "{num:03d}.png", "mask_regions": {"nucleus": [255], "cell": [128, 255]},
         "label_map": {1: "neutrophil"}, "box_from_mask": "nucleus", "split_fractions": [0.8, 0.1, 0.1]}
    s = DatasetSpec.from_dict(d)
    assert s.id_column == ("image ID",) and s.mask_regions == (("nucleus", (255,)), ("cell", (128, 255)))
    assert s.label_map == (("1", "neutrophil"),) and s.split_fractions == (0.8, 0.1, 0.1)
    again = DatasetSpec.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s and hash(again) == hash(s)
    assert "layout" not in s.to_dict() and "label_map" in s.to_dict()  # defaults of new keys left out


@pytest.mark.parametrize("patch, needle", [
    ({"mask_region": {}}, "unknown key(s) 'mask_region' (did you mean 'mask_regions'?); valid keys:"),
    ({"resize": "crop"}, "key 'resize': 'crop' is not one of ['resize', 'letterbox']"),
    ({"layout": "tree"}, "key 'layout': 'tree' is not one of ['table', 'folders', 'split_files', 'images']"),
    ({"input_size": "224"}, "key 'input_size': expected an integer >= 1"),
    ({"mask_template": "{id}.png"}, "key 'mask_regions': required with mask_template"),
    ({"mask_template": "{id}.png", "mask_regions": {"a": ["x"]}}, "key 'mask_regions': expected a table"),
    ({"image_template": "{patient}.png"}, "uses ['patient']; the allowed fields are"),
    ({"box_from_mask": "nucleus"}, "key 'box_from_mask': 'nucleus' is not a mask region"),
    ({"boxes_format": "coco"}, "key 'boxes_file': required with boxes_format = 'coco'"),
    ({"split_fractions": [0.5, 0.5, 0.5]}, "key 'split_fractions': expected three non-negative numbers"),
    ({"labels": None}, "key 'labels': required with layout = 'table'"),
    ({"score_split": "holdout"}, "key 'score_split': 'holdout' is not one of ['train', 'val', 'test', 'all']"),
    ({"strict": "yes"}, "key 'strict': expected true or false"),
])
def test_from_dict_errors_name_key_and_allowed_values(tmp_path, patch, needle):
    d = {"name": "x", "root": str(tmp_path), "labels": "l.csv", **patch}
    with pytest.raises(SpecError) as exc:
        DatasetSpec.from_dict(d)
    assert needle in str(exc.value) and "dataset 'x'" in str(exc.value)


def test_toml_relative_root_and_both_shapes(tmp_path):
    data = tmp_path / "data" / "set one"
    data.mkdir(parents=True)
    (data / "labels.csv").write_text("image,label\na,x\nb,y\n")
    cfg = tmp_path / "configs"
    cfg.mkdir()
    (cfg / "one.toml").write_text('[dataset]\nname = "one"\nroot = "../data/set one"\nlabels = "labels.csv"\n')
    (cfg / "exp.toml").write_text('[[datasets]]\nname = "a"\nroot = "../data/set one"\nlabels = "labels.csv"\n'
                                  '[[datasets]]\nname = "b"\nroot = "%s"\nlabels = "labels.csv"\n' % data.as_posix())
    (one,) = load_dataset_config(cfg / "one.toml")
    assert one.root == str(data.resolve())
    assert [s.root for s in load_dataset_config(cfg / "exp.toml")] == [str(data.resolve())] * 2
    (cfg / "bad.toml").write_text('[[datasets]]\nname = "a"\nroot = "."\nlabels = "l.csv"\nfoo = 1\n')
    with pytest.raises(SpecError, match=r"bad\.toml: dataset 'a': unknown key\(s\) 'foo'"):
        load_dataset_config(cfg / "bad.toml")


# ---------------------------------------------------------------- tables and layouts

def _images(root, names, size=(8, 8)):
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (60, 60, 60)).save(p)


@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet"])
def test_label_tables_and_label_map(tmp_path, ext):
    rows = [("a", 1), ("b", 2), ("c", 1)]
    if ext == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        pq.write_table(pa.table({"File Name": [r[0] for r in rows], "Diagnosis": [r[1] for r in rows]}),
                       tmp_path / "t.parquet")
    else:
        sep = "," if ext == "csv" else "\t"
        (tmp_path / f"t.{ext}").write_text(f"File Name{sep}Diagnosis\n" + "".join(f"{a}{sep}{b}\n" for a, b in rows))
    _images(tmp_path, ["a.png", "b.png", "c.png"])
    spec = DatasetSpec.from_dict({"name": "t", "root": str(tmp_path), "labels": f"t.{ext}",
                                  "id_column": ["file name"], "label_column": "diagnosis",
                                  "image_template": "{id}.png", "label_map": {"1": "benign", "2": "malignant"}})
    recs, classes = load_records(spec)
    assert classes == ("benign", "malignant")
    assert [(r.image_id, r.label, r.label_name) for r in recs] == [("a", 0, "benign"), ("b", 1, "malignant"),
                                                                   ("c", 0, "benign")]


def test_folder_layout_with_split_folders_and_exclude(tmp_path):
    _images(tmp_path / "imgs", ["train/benign/b 1.png", "train/benign/b 1_mask.png", "train/malignant/m1.png",
                                "test/benign/b2.png", "test/malignant/m2.png"])
    Image.new("L", (8, 8), 255).save(tmp_path / "imgs/train/benign/b 1_mask.png")
    spec = DatasetSpec.from_dict({"name": "f", "root": str(tmp_path), "layout": "folders", "images_dir": "imgs",
                                  "exclude": ["*_mask*"], "mask_template": "imgs/{dir}/{stem}_mask*.png",
                                  "mask_regions": {"lesion": [255]}, "input_size": 8})
    recs, classes = load_records(spec)
    assert classes == ("benign", "malignant")
    got = {r.image_id: (r.split, r.label_name, r.mask_path.name if r.mask_path else None) for r in recs}
    assert got == {"test/benign/b2.png": ("test", "benign", None), "test/malignant/m2.png": ("test", "malignant", None),
                   "train/benign/b 1.png": ("train", "benign", "b 1_mask.png"),
                   "train/malignant/m1.png": ("train", "malignant", None)}
    s = ImageDataset(spec, "train")[0]
    assert s.regions["lesion"].all()


def test_split_files_and_group_column(tmp_path):
    _images(tmp_path, [f"{i}.png" for i in range(40)])
    (tmp_path / "sets").mkdir()
    (tmp_path / "sets/train.txt").write_text("".join(f"{i}\n" for i in range(30)))
    (tmp_path / "sets/test.txt").write_text("".join(f"{i}\n" for i in range(30, 40)))
    lines = "".join(f"{i},{'ab'[i % 2]},P{i // 4}\n" for i in range(40))
    (tmp_path / "l.csv").write_text("image,label,patient\n" + lines)
    base = {"name": "s", "root": str(tmp_path), "labels": "l.csv", "image_template": "{id}.png"}
    recs, _ = load_records(DatasetSpec.from_dict({**base, "split_files": "sets/{split}.txt"}))
    assert [r.split for r in recs] == ["train"] * 30 + ["test"] * 10
    spec = DatasetSpec.from_dict({**base, "group_column": "patient", "split_seed": 3})
    recs, _ = load_records(spec)
    by_patient: dict = {}
    for r in recs:
        by_patient.setdefault(r.group, set()).add(r.split)
    assert all(len(s) == 1 for s in by_patient.values())  # no patient in two splits
    assert {s for v in by_patient.values() for s in v} == {"train", "val", "test"}
    # a given split column that puts one patient in two splits is an error
    (tmp_path / "l2.csv").write_text("image,label,patient,split\n0,a,P0,train\n1,b,P0,test\n")
    with pytest.raises(DatasetError, match=r"l2\.csv: group 'P0' spans the splits \['test', 'train'\]"):
        load_records(DatasetSpec.from_dict({**base, "labels": "l2.csv", "group_column": "patient",
                                            "split_column": "split"}))


def test_header_spelling_variants_and_txt_tables(tmp_path):
    _images(tmp_path, ["a.png"])
    (tmp_path / "l.txt").write_text("\ufeffImage_ID;Class-Label\na;1\n", encoding="utf-8")
    spec = DatasetSpec.from_dict({"name": "v", "root": str(tmp_path), "labels": "l.txt", "image_template": "{id}.png"})
    (rec,), classes = load_records(spec)  # 'image ID' and 'class label' match 'Image_ID' and 'Class-Label'
    assert rec.image_id == "a" and classes == ("1",)


def test_image_size_from_headers(tmp_path):
    import tifffile

    from engine.data import image_size
    make_dicom(tmp_path / "a.dcm", np.zeros((3, 5), np.uint16))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((7, 4), np.uint16))
    Image.new("RGB", (9, 2)).save(tmp_path / "c.png")
    (tmp_path / "d.png").write_bytes(b"")
    assert [image_size(tmp_path / n) for n in ("a.dcm", "b.tif", "c.png", "d.png")] == [(5, 3), (4, 7), (9, 2), None]


def test_split_files_layout_labels_from_boxes_and_problems(tmp_path):
    from engine.data import scan_records
    _images(tmp_path, ["JPEG/a.png", "JPEG/b.png", "JPEG/c.png"])
    (tmp_path / "Ann").mkdir()
    box = "<object><name>WBC</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></object>"
    (tmp_path / "Ann/a.xml").write_text(f"<annotation>{box}</annotation>")
    (tmp_path / "Ann/b.xml").write_text(f"<annotation>{box.replace('WBC', 'RBC')}</annotation>")
    (tmp_path / "train.txt").write_text("a\nb\nc\n")
    (tmp_path / "test.txt").write_text("a\n")
    spec = DatasetSpec.from_dict({"name": "v", "root": str(tmp_path), "layout": "split_files",
                                  "split_files": "{split}.txt", "image_template": "JPEG/{id}.png",
                                  "boxes_template": "Ann/{id}.xml", "box_classes": ["WBC"]})
    recs, classes, problems = scan_records(spec)
    assert classes == ("negative", "positive")
    assert [(r.image_id, r.label_name, r.split) for r in recs] == [("a", "positive", "train"),
                                                                    ("b", "negative", "train")]
    reasons = sorted(p.reason for p in problems)
    assert reasons[0].startswith("box annotation file not found; the image cannot be labelled")  # c.xml
    assert "line 1: id 'a' is already in the 'train' split; kept there" in reasons
    assert "split file for 'val' not found; that split is empty" in reasons
    with pytest.raises(DatasetError, match=r"test\.txt: line 1: id 'a' is already in the 'train' split"):
        load_records(spec)


def test_folder_layout_image_outside_class_folder(tmp_path):
    from engine.data import scan_records
    _images(tmp_path, ["loose.png", "cat/a.png", "dog/b.png"])
    spec = DatasetSpec.from_dict({"name": "f", "root": str(tmp_path), "layout": "folders"})
    recs, classes, problems = scan_records(spec)
    assert classes == ("cat", "dog") and [r.image_id for r in recs] == ["cat/a.png", "dog/b.png"]
    assert [(p.file.endswith("loose.png"), p.reason) for p in problems] == [
        (True, "image is not inside a class folder; skipped")]
