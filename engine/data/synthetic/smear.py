"""Seeded generator of a blood-smear-like demo dataset, written as real files.

Each image shows one white blood cell (WBC) among red blood cells (distractors) on a noisy,
unevenly lit background.  The four classes differ *only* in the morphology of the WBC nucleus:

* ``lymphocyte``  -- one large round nucleus,
* ``neutrophil``  -- four or five small separate lobes,
* ``monocyte``    -- a horseshoe (an open ring),
* ``eosinophil``  -- two separate lobes (bilobed).

(The shapes are stylised so that a small ViT trained from scratch in minutes can tell them apart.)

Cytoplasm size and colour, red cells, illumination and noise are drawn from the same
distributions for every class, so the class signal lies only inside the WBC: the WBC mask (and
its box) is an exact localisation answer.

Files written under ``out_dir``::

    images/<id>.png        RGB, size x size
    masks/<id>.png         uint8, 0 background / 128 cytoplasm / 255 nucleus (as the WBC set)
    annotations/<id>.xml   Pascal VOC, one ``WBC`` object plus one ``RBC`` object per red cell
    labels.csv             image,label,split
    manifest.json          generator parameters (the cache key for re-use)
"""
from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..dataset import DatasetSpec

log = logging.getLogger(__name__)

CLASSES = ("lymphocyte", "neutrophil", "monocyte", "eosinophil")
SUPERSAMPLE = 4  # shapes are rendered at 4x and area-averaged: anti-aliased edges


@dataclass(frozen=True)
class SmearConfig:
    n_train: int = 1600
    n_val: int = 200
    n_test: int = 200
    size: int = 64
    seed: int = 0
    noise_sigma: float = 5.0
    n_rbc: tuple[int, int] = (5, 10)
    wbc_radius: tuple[float, float] = (12.0, 14.0)
    version: int = 3  # bump when the drawing rules change

    def key(self) -> dict:
        return asdict(self)


def _disc(yy, xx, cy, cx, r):
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _nucleus(label: str, yy, xx, cy, cx, rc, rng: np.random.Generator) -> np.ndarray:
    """Boolean nucleus mask (at supersampled resolution) for one class."""
    theta = rng.uniform(0, 2 * math.pi)
    if label == "lymphocyte":
        r = rc * rng.uniform(0.62, 0.72)
        off = rc * 0.08
        return _disc(yy, xx, cy + off * math.sin(theta), cx + off * math.cos(theta), r)
    if label == "neutrophil":
        n = int(rng.integers(4, 6))
        ring = rc * 0.5
        r = rc * 0.2
        out = np.zeros(yy.shape, bool)
        for i in range(n):
            a = theta + 2 * math.pi * i / n
            out |= _disc(yy, xx, cy + ring * math.sin(a), cx + ring * math.cos(a), r)
        return out
    if label == "monocyte":
        dy, dx = yy - cy, xx - cx
        rad = np.sqrt(dy ** 2 + dx ** 2)
        ang = np.mod(np.arctan2(dy, dx) - theta, 2 * math.pi)
        return (rad >= rc * 0.3) & (rad <= rc * 0.62) & (ang <= math.radians(300))
    if label == "eosinophil":
        sep = rc * 0.45
        r = rc * 0.3
        ux, uy = math.cos(theta), math.sin(theta)
        return _disc(yy, xx, cy + sep * uy, cx + sep * ux, r) | _disc(yy, xx, cy - sep * uy, cx - sep * ux, r)
    raise ValueError(f"unknown class {label!r}; expected one of {CLASSES}")


def render_smear(label: str, cfg: SmearConfig, rng: np.random.Generator):
    """Draw one image.  Returns (rgb uint8 HxWx3, mask uint8 HxW, wbc_box, rbc_boxes).

    Boxes are continuous pixel coordinates ``(x0, y0, x1, y1)`` (x1/y1 exclusive).
    """
    s, ss = cfg.size, cfg.size * SUPERSAMPLE
    yy, xx = (np.mgrid[0:ss, 0:ss].astype(np.float32) + 0.5) / SUPERSAMPLE  # pixel-unit coords

    # background with a smooth illumination gradient
    base = np.array([232, 212, 206], np.float32) + rng.normal(0, 4, 3)
    gy, gx = rng.normal(0, 0.25, 2)
    illum = 1.0 + (gy * (yy - s / 2) + gx * (xx - s / 2)) / s
    img = base[None, None, :] * illum[..., None]

    rc = rng.uniform(*cfg.wbc_radius)
    margin = rc + 1.5
    cy, cx = rng.uniform(margin, s - margin, 2)

    rbc_boxes = []
    for _ in range(int(rng.integers(cfg.n_rbc[0], cfg.n_rbc[1] + 1))):
        r = rng.uniform(5.5, 8.0)
        for _try in range(20):  # red cells may touch but not hide the white cell
            ry, rx = rng.uniform(0, s, 2)
            if math.hypot(ry - cy, rx - cx) > rc + r * 0.6:
                break
        else:
            continue
        col = np.array([214, 112, 118], np.float32) + rng.normal(0, 6, 3)
        # draw inside the cell's bounding window only (same pixels, far fewer operations)
        y0, y1 = max(0, int((ry - r) * SUPERSAMPLE)), min(ss, int((ry + r) * SUPERSAMPLE) + 2)
        x0, x1 = max(0, int((rx - r) * SUPERSAMPLE)), min(ss, int((rx + r) * SUPERSAMPLE) + 2)
        if y1 <= y0 or x1 <= x0:
            continue
        d = np.sqrt((yy[y0:y1, x0:x1] - ry) ** 2 + (xx[y0:y1, x0:x1] - rx) ** 2)
        body = d <= r
        pale = np.clip(1.0 - d / (0.55 * r), 0, 1)[..., None] * 0.35  # biconcave pale centre
        shade = col * (1 - pale) + np.array([240, 200, 200], np.float32) * pale
        img[y0:y1, x0:x1] = np.where(body[..., None], shade, img[y0:y1, x0:x1])
        rbc_boxes.append((max(rx - r, 0.0), max(ry - r, 0.0), min(rx + r, s), min(ry + r, s)))

    # the nucleus draws from its own stream, so everything outside the cell is identical
    # whatever the class (tested): the class signal lies only inside the annotated region
    nuc_rng = np.random.default_rng(rng.integers(2 ** 63))
    cell = _disc(yy, xx, cy, cx, rc)
    nucleus = _nucleus(label, yy, xx, cy, cx, rc, nuc_rng) & cell
    cyto_col = np.array([196, 186, 222], np.float32) + rng.normal(0, 5, 3)
    nuc_col = np.array([92, 52, 138], np.float32) + rng.normal(0, 6, 3)
    img = np.where(cell[..., None], cyto_col, img)
    img = np.where(nucleus[..., None], nuc_col, img)

    # area-average down to the output size (anti-aliasing), then sensor noise
    img = img.reshape(s, SUPERSAMPLE, s, SUPERSAMPLE, 3).mean(axis=(1, 3))
    img = img + rng.normal(0, cfg.noise_sigma, img.shape)
    rgb = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    def coverage(m):
        return m.reshape(s, SUPERSAMPLE, s, SUPERSAMPLE).mean(axis=(1, 3)) >= 0.5

    mask = np.zeros((s, s), np.uint8)
    mask[coverage(cell)] = 128
    mask[coverage(nucleus)] = 255
    wbc_box = (cx - rc, cy - rc, cx + rc, cy + rc)
    return rgb, mask, wbc_box, rbc_boxes


def voc_xml(filename: str, size: int, objects: list[tuple[str, tuple[float, float, float, float]]]) -> str:
    """Pascal VOC annotation.  VOC coordinates are 1-based inclusive pixel indices."""
    parts = [
        "<annotation>",
        f"  <filename>{escape(filename)}</filename>",
        f"  <size><width>{size}</width><height>{size}</height><depth>3</depth></size>",
    ]
    for name, (x0, y0, x1, y1) in objects:
        xmin, ymin = int(math.floor(x0)) + 1, int(math.floor(y0)) + 1
        xmax, ymax = int(math.ceil(x1)), int(math.ceil(y1))
        parts += [
            "  <object>",
            f"    <name>{escape(name)}</name><difficult>0</difficult>",
            f"    <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>",
            "  </object>",
        ]
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def generate_blood_smear(out_dir: str | Path, cfg: SmearConfig = SmearConfig(), progress: bool = True) -> Path:
    """Write the dataset to ``out_dir`` (re-used as is when its manifest matches ``cfg``)."""
    out = Path(out_dir)
    manifest = out / "manifest.json"
    if manifest.exists():
        try:
            if json.loads(manifest.read_text()) == json.loads(json.dumps(cfg.key())):
                log.info("demo data in %s is up to date", out)
                return out
        except json.JSONDecodeError:
            pass
    for sub in ("images", "masks", "annotations"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    if manifest.exists():
        manifest.unlink()  # a partial rewrite must never look complete

    rng = np.random.default_rng(cfg.seed)
    splits = ["train"] * cfg.n_train + ["val"] * cfg.n_val + ["test"] * cfg.n_test
    rows = []
    for i, split in enumerate(tqdm(splits, desc="generate demo images", disable=not progress, unit="img")):
        label = CLASSES[i % len(CLASSES)]  # balanced within every split
        img_rng = np.random.default_rng([cfg.seed, i])
        rgb, mask, wbc_box, rbc_boxes = render_smear(label, cfg, img_rng)
        image_id = f"{split}_{i:05d}"
        Image.fromarray(rgb).save(out / "images" / f"{image_id}.png")
        Image.fromarray(mask).save(out / "masks" / f"{image_id}.png")
        objects = [("WBC", wbc_box)] + [("RBC", b) for b in rbc_boxes]
        (out / "annotations" / f"{image_id}.xml").write_text(voc_xml(f"{image_id}.png", cfg.size, objects))
        rows.append((image_id, label, split))
    rng.shuffle(rows)  # row order carries no class information
    with open(out / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "label", "split"])
        w.writerows(rows)
    manifest.write_text(json.dumps(cfg.key(), indent=1))
    log.info("wrote %d demo images to %s", len(rows), out)
    return out


def smear_spec(root: str | Path) -> DatasetSpec:
    """How the loader reads a generated smear: labels.csv with a split column, the whole WBC
    (cytoplasm 128 + nucleus 255) as the ``mask`` region, and the VOC ``WBC`` boxes."""
    return DatasetSpec(
        name="demo_blood_smear", root=str(root), labels="labels.csv", image_template="images/{id}.png",
        split_column="split", mask_template="masks/{id}.png", mask_regions=(("mask", (128, 255)),),
        boxes_template="annotations/{id}.xml", box_classes=("WBC",), input_size=64, resize="resize",
        classes=CLASSES)
