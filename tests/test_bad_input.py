"""A corpus of malformed inputs, generated at test time: each gets a one-line error naming the file and
the reason, or is handled and reported by check-data."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from test_formats import make_dicom

from engine.data import DatasetError, DatasetSpec, ImageDataset, load_records, scan_records
from engine.data.check import check_data_command, check_dataset

GOOD = ["ok 1", "ok 2", "ok 3", "ok 4", "ok 5", "ok 6"]


def _png(path, size=(16, 12), mode="RGB", colour=(120, 60, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode != "L" else 100).save(path, format="PNG")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """``bad data ü/``: a labels table, images of every kind of trouble, CSV boxes and masks."""
    import tifffile
    root = tmp_path_factory.mktemp("corpus") / "bad data ü"
    img = root / "images"
    for i, n in enumerate(GOOD):
        _png(img / f"{n}.png")
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(buf, format="JPEG")
    (img / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (img / "zero.png").write_bytes(b"")
    _png(img / "png as.jpg")  # PNG content, JPEG extension
    tifffile.imwrite(img / "deep.tif", (np.arange(16 * 12, dtype=np.uint16).reshape(12, 16) * 300))
    _png(img / "rgba.png", mode="RGBA", colour=(10, 20, 30, 0))
    pal = Image.new("P", (16, 12))
    pal.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    pal.save(img / "palette.png")
    _png(img / "huge.png", size=(400, 300))  # above the corpus's max_pixels
    _png(img / "ñame ü 1.png")
    make_dicom(img / "report.dcm")
    _png(img / "unlisted.png")  # on disk, no row in the labels table
    masks = root / "masks"
    masks.mkdir()
    Image.new("L", (17, 12), 255).save(masks / "ok 3.png")  # wrong size
    m = np.zeros((12, 16), np.uint8)
    m[2:6, 2:6], m[8, 8] = 255, 77
    Image.fromarray(m).save(masks / "ok 4.png")  # one stray value
    Image.fromarray(m * (m == 255)).save(masks / "ok 5.png")
    rows = [("ok 1.png", "a"), ("ok 2.png", "b"), ("ok 3.png", "a"), ("ok 4.png", "b"), ("ok 5.png", "a"),
            ("ok 6.png", "b"),
            ("truncated.jpg", "a"), ("zero.png", "b"), ("png as.jpg", "a"), ("deep.tif", "b"), ("rgba.png", "a"),
            ("palette.png", "b"), ("huge.png", "a"), ("ñame ü 1.png", "b"), ("report.dcm", "a"),
            ("ghost.png", "b"), ("ok 6.png", "b"), ("ok 2.png", "c")]
    (root / "labels.csv").write_text("image,label\n" + "".join(f"{i},{y}\n" for i, y in rows), encoding="utf-8")
    (root / "boxes.csv").write_text("image,x0,y0,x1,y1\nok 1,2,2,8,8\nok 1,20,20,30,30\nok 2,5,5,5,9\n"
                                    "ok 6,-4,1,6,6\nnobody,1,1,2,2\nok 6,x,1,2,3\n")
    return root


def corpus_spec(root, **kw) -> DatasetSpec:
    return DatasetSpec.from_dict({
        "name": "corpus", "root": str(root), "labels": "labels.csv", "classes": ["a", "b"],
        "image_template": "images/{id}", "mask_template": "masks/{stem}*.png", "mask_regions": {"lesion": [255]},
        "boxes_format": "csv", "boxes_file": "boxes.csv", "max_pixels": 50_000, "input_size": 16,
        "split_fractions": [1.0, 0.0, 0.0], **kw})


def _dataset(corpus) -> ImageDataset:
    """The corpus's usable rows (scan_records skips the bad table rows that load_records refuses)."""
    spec = corpus_spec(corpus)
    records, classes, _ = scan_records(spec)
    return ImageDataset(spec, records=records, classes=classes)


@pytest.mark.parametrize("image_id, needle", [
    ("truncated.jpg", r"truncated\.jpg: not a readable image \("),
    ("zero.png", r"zero\.png: empty file \(0 bytes\)"),
    ("huge.png", r"huge\.png: image is 400x300 = 0\.1 Mpx, above max_pixels = 50000"),
    ("report.dcm", r"report\.dcm: DICOM file has no pixel data"),
    ("ghost.png", r"ghost\.png: image file not found"),
    ("ok 3.png", r"masks/ok 3\.png: mask is 17x12 but its image is 16x12"),
])
def test_bad_item_raises_one_line_dataset_error(corpus, image_id, needle):
    ds = _dataset(corpus)
    i = [r.image_id for r in ds.records].index(image_id)
    with pytest.raises(DatasetError, match=needle) as exc:
        ds[i]
    assert "\n" not in str(exc.value) and str(corpus) in str(exc.value)


@pytest.mark.parametrize("image_id", ["png as.jpg", "deep.tif", "rgba.png", "palette.png", "ñame ü 1.png",
                                      "ok 1.png", "ok 2.png", "ok 4.png",
                                      "ok 6.png"])
def test_handled_items_load(corpus, image_id):
    ds = _dataset(corpus)
    s = ds[[r.image_id for r in ds.records].index(image_id)]
    assert s.image.shape == (3, 16, 16) and 0 <= float(s.image.min()) and float(s.image.max()) <= 1
    if image_id == "deep.tif":
        assert float(s.image.max()) > 0.8  # 16-bit values up to 57300 / 65535: scaled, not clipped to 255
    if image_id == "ok 4.png":  # the stray value 77 is background; the 4 x 4 lesion (rows x 16/12) stays
        assert s.regions["lesion"].any() and not s.regions["lesion"][10:].any()
    if image_id == "ok 6.png":  # a box partly left of the image is clipped
        assert s.regions["box"][:, 0].any()


def test_load_records_raises_first_table_problem(corpus):
    with pytest.raises(DatasetError, match=r"labels\.csv: labels \['c'\] are not among the configured classes"):
        load_records(corpus_spec(corpus))


def test_check_data_reports_every_problem(corpus):
    report = check_dataset(corpus_spec(corpus, image_template="images/{id}"))
    lines = report.format().splitlines()
    expect = [
        ("error", "labels.csv", "labels ['c'] are not among the configured classes ['a', 'b']; 1 row(s) skipped"),
        ("error", "labels.csv", "image id 'ok 6.png' is listed twice (line 18)"),
        ("error", "truncated.jpg", "not a readable image"),
        ("error", "zero.png", "empty file (0 bytes)"),
        ("error", "huge.png", "above max_pixels"),
        ("error", "report.dcm", "DICOM file has no pixel data"),
        ("error", "ghost.png", "image file not found"),
        ("warning", "png as.jpg", "content is PNG but the extension '.jpg' says JPEG"),
        ("warning", "unlisted.png", "not listed (missing row?)"),
        ("warning", "boxes.csv", "box 2 (20, 20, 30, 30) lies outside the 16x12 image; dropped"),
        ("warning", "boxes.csv", "box 1 (5, 5, 5, 9) is degenerate (no area); dropped"),
        ("warning", "boxes.csv", "box 1 (-4, 1, 6, 6) extends outside the 16x12 image; clipped"),
        ("warning", "boxes.csv", "boxes for 1 image id(s) that are not in the dataset, e.g. ['nobody']"),
        ("warning", "boxes.csv", "line 7: missing or non-numeric box values"),
        ("note", "ok 4.png", "mask has unexpected values [77] on 1 pixels"),  # 0.5 % of the mask
    ]
    for sev, file, reason in expect:
        assert any(ln.split()[0] == sev and file in ln and reason in ln for ln in lines), (sev, file, reason)
    assert not any(p.severity == "error" and ("ok " in p.file and "ok 3" not in p.file) for p in report.problems)
    assert ("error", "masks/ok 3.png", "mask is 17x12 but its image is 16x12") in [
        (p.severity, p.file[len(str(corpus)) + 1:], p.reason) for p in report.problems]
    assert report.n_images == 16 and report.annotated == 4 and report.failed()


def test_check_data_command_on_toml(corpus, tmp_path, capsys):
    cfg = tmp_path / "corpus.toml"
    cfg.write_text(f'[dataset]\nname = "c"\nroot = "{corpus.as_posix()}"\nlabels = "labels.csv"\n'
                   'image_template = "images/{id}"\nmax_pixels = 50000\n', encoding="utf-8")
    assert check_data_command(str(cfg)) == 1
    out = capsys.readouterr().out
    assert "dataset 'c': 16 images, 3 classes" in out and "check-data: problems found" in out
    assert "error   " in out and "truncated.jpg: not a readable image" in out
    (tmp_path / "broken.toml").write_text('[dataset]\nname = "c"\nroot = "."\nlabelz = "x"\n')
    assert check_data_command(str(tmp_path / "broken.toml")) == 2
    assert "unknown key(s) 'labelz' (did you mean 'labels'?)" in capsys.readouterr().out


def test_empty_and_single_class_datasets(tmp_path):
    (tmp_path / "empty.csv").write_text("image,label\n")
    spec = DatasetSpec.from_dict({"name": "e", "root": str(tmp_path), "labels": "empty.csv"})
    with pytest.raises(DatasetError, match=r"empty\.csv: no images listed"):
        load_records(spec)
    rep = check_dataset(spec)
    assert rep.n_images == 0 and any("no images listed" in p.reason for p in rep.problems) and rep.failed()
    (tmp_path / "folder").mkdir()
    folders = DatasetSpec.from_dict({"name": "f", "root": str(tmp_path), "layout": "folders", "images_dir": "folder"})
    with pytest.raises(DatasetError, match=r"folder: no images found"):
        load_records(folders)
    for k in range(4):
        _png(tmp_path / f"s{k}.png")
    (tmp_path / "one.csv").write_text("image,label\n" + "".join(f"s{k}.png,x\n" for k in range(4)))
    one = DatasetSpec.from_dict({"name": "o", "root": str(tmp_path), "labels": "one.csv"})
    assert len(load_records(one)[0]) == 4  # loads
    rep = check_dataset(one)
    assert [p.reason for p in rep.problems if p.severity == "warning"] == [
        "only one class ('x') has images: a classifier cannot be trained on it",
        "no image is scored with these score_* settings"]


def test_strict_is_a_spec_key(tmp_path):
    spec = DatasetSpec.from_dict({"name": "s", "root": str(tmp_path), "labels": "l.csv", "strict": True})
    assert spec.strict is True and spec.to_dict()["strict"] is True
    assert DatasetSpec(name="s", root=".", labels="l.csv").strict is False


def test_unanticipated_reader_failure_is_still_one_dataset_error(corpus, monkeypatch):
    import engine.data.dataset as dataset_mod

    def broken(*a, **k):
        raise RuntimeError("segmentation\nsecond line")
    monkeypatch.setattr(dataset_mod, "read_ground_truth", broken)
    ds = _dataset(corpus)
    with pytest.raises(DatasetError, match=r"ok 1\.png: cannot be loaded \(RuntimeError: segmentation second line\)"):
        ds[[r.image_id for r in ds.records].index("ok 1.png")]


def test_report_counts_add_up(corpus):
    rep = check_dataset(corpus_spec(corpus))
    assert (rep.annotated, rep.unannotated, rep.unreadable, rep.bad_annotations) == (4, 6, 5, 1)
    assert "with annotations: 4; without: 6; unreadable images: 5; unreadable annotations: 1" in rep.format()
