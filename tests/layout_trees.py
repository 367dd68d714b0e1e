"""Generated dataset trees in the layouts users have (not the demo's conventions), for tests.

* :func:`class_folder_tree`: ``images/<class>/<id>.png`` with lesion masks in a sibling
  ``masks/<class>/<id>_mask*.png`` folder; some images have two mask files (two lesions), the normal
  class has empty (all-zero) masks.  Region name: ``tumour``.
* :func:`yolo_tree`: ``images/<id>.png`` and YOLO ``labels/<id>.txt`` with six-decimal coordinates,
  no image labels; boxes of WBC (class 0), RBC (1) and, on every other image, Platelets (2).  Boxes
  at the border leave the image by less than a pixel after rounding.

The docs' examples (``docs/examples/*.toml``, with ``root = "."``) are copied into the tree.
:func:`layout_run` (a session fixture) runs a small experiment on both.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = PROJECT_ROOT / "docs" / "examples"
SIZE = 64


def _disc(mask: np.ndarray, cx: float, cy: float, r: float) -> None:
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    mask[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = True


def _image(rng, lesions: np.ndarray, dark: bool) -> Image.Image:
    gray = rng.normal(0.55, 0.08, lesions.shape)
    gray[lesions] = 0.15 if dark else 0.9
    arr = (np.clip(gray, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(np.stack([arr] * 3, -1))


def class_folder_tree(root: Path, n_per_class: int = 12, seed: int = 0, example: bool = True) -> Path:
    """The class-folder tree (see the module doc); returns the path of its spec (the docs' example)."""
    rng = np.random.default_rng(seed)
    for cls in ("benign", "malignant", "normal"):
        (root / "images" / cls).mkdir(parents=True, exist_ok=True)
        (root / "masks" / cls).mkdir(parents=True, exist_ok=True)
        for k in range(n_per_class):
            stem = f"{cls[0]}{k:03d}"
            masks = []
            if cls != "normal":
                for j in range(2 if k % 3 == 0 else 1):  # every third image: two lesions, two mask files
                    m = np.zeros((SIZE, SIZE), bool)
                    _disc(m, rng.uniform(14, 50), rng.uniform(14, 50), rng.uniform(5, 10))
                    masks.append(m)
            else:
                masks.append(np.zeros((SIZE, SIZE), bool))  # an empty mask: no lesion
            union = np.logical_or.reduce(masks)
            _image(rng, union, dark=cls == "malignant").save(root / "images" / cls / f"{stem}.png")
            for j, m in enumerate(masks):
                name = f"{stem}_mask.png" if j == 0 else f"{stem}_mask_{j}.png"
                Image.fromarray((m * 255).astype(np.uint8)).save(root / "masks" / cls / name)
    if example:
        shutil.copy(EXAMPLES / "class_folders_masks.toml", root / "class_folders_masks.toml")
    return root / "class_folders_masks.toml"


def _yolo_line(cls: int, x0: float, y0: float, x1: float, y1: float) -> str:
    cx, cy, w, h = (x0 + x1) / 2 / SIZE, (y0 + y1) / 2 / SIZE, (x1 - x0) / SIZE, (y1 - y0) / SIZE
    return f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def yolo_tree(root: Path, n: int = 36, seed: int = 0, example: bool = True) -> Path:
    """The YOLO tree (see the module doc); returns the path of its spec (the docs' example)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for k in range(n):
        stem = f"s{k:03d}"
        cells = np.zeros((SIZE, SIZE), bool)
        lines = []
        # the WBC: a disc and its box; every fourth one touches the right border (x1 = 64 after rounding,
        # written as cx + w / 2 = 1.0000004: out by a fraction of a pixel)
        r = rng.uniform(7, 11)
        cx = SIZE - r if k % 4 == 0 else rng.uniform(16, 48)
        cy = rng.uniform(16, 48)
        _disc(cells, cx, cy, r)
        x0, x1 = cx - r, cx + r + (1e-5 if k % 4 == 0 else 0)
        lines.append(_yolo_line(0, x0, cy - r, x1, cy + r))
        for _ in range(2):  # red cells
            rx, ry = rng.uniform(6, 58), rng.uniform(6, 58)
            lines.append(_yolo_line(1, rx - 5, ry - 5, rx + 5, ry + 5))
        if k % 2 == 0:  # platelets: small bright dots
            px, py = rng.uniform(8, 56), rng.uniform(8, 56)
            _disc(cells, px, py, 3)
            lines.append(_yolo_line(2, px - 3, py - 3, px + 3, py + 3))
        _image(rng, cells, dark=k % 2 == 0).save(root / "images" / f"{stem}.png")
        (root / "labels" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    if example:
        shutil.copy(EXAMPLES / "yolo_detection.toml", root / "yolo_detection.toml")
    return root / "yolo_detection.toml"


HEADER = """
name = "layouts"
seed = 0
batch_size = 8
work_dir = "work"

[[models]]
name = "vit_demo"
init = "trained"
train = { epochs = 1, lr = 2e-3, batch_size = 16 }

[methods]
attention = { layer = -1 }
gradcam_attn = {}
baseline_random = {}

[metrics]
pointing_game = {}
iou_top5 = {}
"""


def _block(spec_path, name=None) -> str:
    """The example's dataset table as an experiment's [[datasets]] block, at the demo model's 64 px."""
    text = spec_path.read_text().replace("[dataset]", "[[datasets]]")
    text = text.replace('root = "."', f'root = "{spec_path.parent.as_posix()}"').replace("input_size = 224",
                                                                                          "input_size = 64")
    return text if name is None else text.replace('name = "breast_us"', f'name = "{name}"')


@pytest.fixture(scope="session")
def layout_run(tmp_path_factory):
    """A small run on both example layouts plus a dataset whose mask template matches nothing:
    (database, run report, class-folder spec path, YOLO spec path)."""
    from engine.runner.experiment import load_experiment
    from engine.runner.run import run_experiment
    base = tmp_path_factory.mktemp("layouts")
    breast = class_folder_tree(base / "breast")
    yolo = yolo_tree(base / "yolo")
    broken = class_folder_tree(base / "broken")  # its mask template (below) matches nothing
    broken_block = _block(broken, "broken_masks").replace('"masks/{dir}/{stem}_mask*.png"', '"masks/{stem}_m*.png"')
    exp = base / "exp.toml"
    exp.write_text(HEADER + "\n" + _block(breast) + "\n" + _block(yolo) + "\n" + broken_block)
    db = base / "r.duckdb"
    report = run_experiment(load_experiment(exp), db, progress=False)
    return db, report, breast, yolo


