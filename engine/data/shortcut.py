"""Shortcut check: how well image *metadata alone* predicts the label (issue 23, docs/datasets.md).

A dataset merged from two sources of different image sizes, where most positives come from one source, lets
a model score well by learning the source.  This check fits a shallow decision tree (Gini, depth
:data:`DEPTH`, at least :data:`MIN_LEAF` training images per leaf) on the **training split**'s metadata --
width, height, aspect ratio, file format, bit depth, mean intensity and any extra per-image column of a
labels table (a site, a source) -- and scores it on the **test split**: balanced accuracy (mean recall over
the classes present) with a 95 % percentile bootstrap CI (test images resampled, :data:`N_RESAMPLES`,
seeded).  The label is flagged *predictable from <features> alone* when the CI's lower bound exceeds chance
(1/K, K = classes in the test split) by more than :data:`MARGIN` and the rule rests on at least one feature
that is not an image statistic (:data:`CONTENT_FEATURES`: a rule on mean intensity alone is reported, not
flagged).  The tree's test predictions are kept so
the dashboard can say on what share of test images each model agrees with the metadata rule.

Pure NumPy (no scikit-learn).  Where it cannot run -- fewer than two classes in the training or the test
split, or metadata that is the same for every image -- :func:`shortcut_check` says why instead of a number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DatasetError
from .images_io import image_format, image_size, is_dicom, read_image
from .spec import DatasetSpec
from .tables import pick_column, read_table

DEPTH = 2             # a rule a reader can follow: at most 4 leaves
MIN_LEAF = 5          # training images per leaf at least (no leaf for one odd image)
MAX_THRESHOLDS = 64   # candidate thresholds per numeric feature (quantiles of its distinct values)
MAX_LEVELS = 20       # a categorical column with more distinct values is not used (an id, a path)
N_RESAMPLES = 2000
MIN_SHARE = 0.25      # a feature is named when its split gain is at least this share of the largest one
MARGIN = 0.05         # flag: balanced-accuracy CI lower bound > chance + MARGIN
# image statistics that the class's own content can explain (a dark lesion lowers the mean): a rule resting on
# them alone is reported, not flagged as a shortcut (the demo ultrasound's classes differ in mean intensity)
CONTENT_FEATURES = ("mean_intensity",)
NUMERIC = ("width", "height", "aspect", "bit_depth", "mean_intensity")
CATEGORICAL = ("format",)
_MODE_BITS = {"1": 1, "L": 8, "P": 8, "RGB": 8, "RGBA": 8, "LA": 8, "CMYK": 8, "YCbCr": 8, "I;16": 16,
              "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}


@dataclass
class ShortcutResult:
    """The check of one dataset; ``reason`` is set (and the numbers are None) where it could not run."""
    features: tuple[str, ...] = ()          # features the rule uses
    candidates: tuple[str, ...] = ()        # features that vary (what the tree could use)
    n_train: int = 0
    n_test: int = 0
    balanced_accuracy: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    chance: float | None = None
    flagged: bool = False
    rule: str = ""
    reason: str | None = None
    test_predictions: dict[str, int] = field(default_factory=dict)   # image id -> class the rule predicts

    def beats_chance(self) -> bool:
        """The rule's balanced-accuracy CI lies clearly above chance (lower bound > chance + MARGIN)."""
        return (self.reason is None and self.ci_low is not None and self.chance is not None and bool(self.features)
                and self.ci_low > self.chance + MARGIN)

    def line(self) -> str:
        """One line for check-data, the Overview, the Leaderboard and ``report``."""
        if self.reason:
            return f"shortcut check not run: {self.reason}"
        ba = f"balanced accuracy {self.balanced_accuracy:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}]"
        if self.flagged:
            return f"the label is predictable from {', '.join(self.features)} alone ({ba}; chance {self.chance:.2f})"
        if self.beats_chance():
            return (f"the label is predictable from {', '.join(self.features)} alone ({ba}; chance "
                    f"{self.chance:.2f}), an image statistic that the classes' own content can explain: not "
                    f"flagged as a shortcut")
        same = ("; width, height, format and bit depth are the same for every image"
                if self.candidates and all(c in CONTENT_FEATURES for c in self.candidates) else "")
        return (f"metadata alone does not clearly predict the label ({ba} on {self.n_test} test images; "
                f"chance {self.chance:.2f}){same}")


def image_metadata(path: Path, pixels: np.ndarray | None = None, spec: DatasetSpec | None = None) -> dict:
    """Width, height, aspect ratio, format and bit depth (from the file's header) and mean intensity in
    [0, 1] of the image as the project reads it (``pixels``: that array when the caller has it, else read
    here with ``spec``'s settings); None for what cannot be read."""
    path = Path(path)
    wh = image_size(path) or (None, None)
    out = {"width": wh[0], "height": wh[1], "aspect": (wh[0] / wh[1]) if wh[0] and wh[1] else None,
           "format": image_format(path), "bit_depth": None, "mean_intensity": None}
    if is_dicom(path):
        out["bit_depth"] = _dicom_bits(path)
    else:
        try:
            with Image.open(path) as im:
                out["bit_depth"] = _MODE_BITS.get(im.mode)
        except (UnidentifiedImageError, OSError, ValueError):
            return out
    if pixels is None:
        try:
            pixels = read_image(path) if spec is None else read_image(
                path, alpha=spec.alpha, intensity=spec.intensity, max_pixels=spec.max_pixels)
        except (DatasetError, OSError, ValueError, RuntimeError):
            return out
    arr = np.asarray(pixels)
    scale = 255.0 if arr.dtype == np.uint8 else 1.0   # read_image: uint8 for 8-bit sources, else [0, 1]
    out["mean_intensity"] = float(arr.astype(np.float64).mean() / scale) if arr.size else None
    return out


def _dicom_bits(path: Path) -> int | None:
    try:
        import pydicom  # only DICOM data needs it
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return int(ds.BitsStored) if "BitsStored" in ds else None
    except Exception:  # any unreadable header: unknown depth (check-data reports the file)
        return None


def table_columns(spec: DatasetSpec, records) -> dict[str, dict]:
    """Image id -> the labels table's other columns (not the id, label, split or group column) of that
    image; empty without a labels table.  A site or source column is what a merged dataset often has."""
    if not spec.labels:
        return {}
    path = Path(spec.root) / spec.labels
    header, rows = read_table(path)
    skip = {pick_column(header, spec.id_column, path, "image id"), pick_column(header, spec.label_column, path,
                                                                                  "label")}
    for extra in (spec.split_column, spec.group_column):
        if extra:
            skip.add(pick_column(header, extra, path, "column"))
    id_col = pick_column(header, spec.id_column, path, "image id")
    keep = [(i, h) for i, h in enumerate(header) if i not in skip]
    wanted = {r.image_id for r in records}
    out = {}
    for row in rows:
        rid = row[id_col].strip() if id_col < len(row) else ""
        if rid in wanted:
            out[rid] = {f"table:{h}": (row[i].strip() if i < len(row) else "") for i, h in keep}
    return out


def dataset_shortcut(spec: DatasetSpec, records, classes, metadata: dict[str, dict] | None = None,
                     seed: int = 0) -> ShortcutResult:
    """The check of one dataset: ``metadata`` (image id -> :func:`image_metadata`) when the caller read the
    images already, else read here; the labels table's other columns are added."""
    metadata = metadata if metadata is not None else {r.image_id: image_metadata(r.image_path, spec=spec)
                                                      for r in records}
    try:
        extra = table_columns(spec, records)
    except DatasetError:
        extra = {}   # the table was reported by the reader already
    rows = [{**metadata.get(r.image_id, {}), **extra.get(r.image_id, {})} for r in records]
    return shortcut_check([r.image_id for r in records], [r.label for r in records], [r.split for r in records],
                          rows, classes, seed)


def _columns(rows: list[dict]) -> tuple[np.ndarray, list[str]]:
    """The design matrix (NaN for a missing number) and the name of each column: numeric features as they
    are, categorical ones (format, any non-numeric extra column) one-hot; constant columns dropped."""
    names = sorted({k for r in rows for k in r})
    cols, labels = [], []
    for name in names:
        values = [r.get(name) for r in rows]
        nums = [_number(v) for v in values]
        given = [(n, v) for n, v in zip(nums, values) if v not in (None, "")]
        numeric = name in NUMERIC or (name not in CATEGORICAL and given and all(n is not None for n, _ in given))
        if numeric:
            col = np.array([np.nan if n is None else n for n in nums], dtype=np.float64)
            if np.unique(col[~np.isnan(col)]).size > 1:
                cols.append(col)
                labels.append(name)
            continue
        levels = sorted({str(v) for v in values if v not in (None, "")})
        if len(levels) < 2 or len(levels) > MAX_LEVELS:
            continue
        for lev in levels:
            cols.append(np.array([1.0 if str(v) == lev else 0.0 for v in values]))
            labels.append(f"{name}={lev}")
    return (np.stack(cols, axis=1) if cols else np.zeros((len(rows), 0))), labels


def _number(v) -> float | None:
    if v is None or v == "" or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _gini(counts: np.ndarray) -> float:
    n = counts.sum()
    return 0.0 if n == 0 else 1.0 - float(((counts / n) ** 2).sum())


def _fit(x: np.ndarray, y: np.ndarray, k: int, depth: int, w: np.ndarray):
    """A node: ('leaf', class) or ('split', column, threshold, left, right); class-balanced weights ``w``
    (each class weighs the same, so the tree aims at balanced accuracy); NaN goes right."""
    counts = np.bincount(y, weights=w, minlength=k)
    leaf = ("leaf", int(np.argmax(counts)))
    if depth == 0 or len(y) < 2 * MIN_LEAF or np.count_nonzero(counts) < 2:
        return leaf
    best, parent = None, _gini(counts)
    for j in range(x.shape[1]):
        col = x[:, j]
        distinct = np.unique(col[~np.isnan(col)])
        if distinct.size < 2:
            continue
        mids = (distinct[:-1] + distinct[1:]) / 2
        if mids.size > MAX_THRESHOLDS:
            mids = np.unique(np.quantile(mids, np.linspace(0, 1, MAX_THRESHOLDS)))
        for t in mids:
            left = col <= t
            nl = int(left.sum())
            if nl < MIN_LEAF or len(y) - nl < MIN_LEAF:
                continue
            cl = np.bincount(y[left], weights=w[left], minlength=k)
            cr = counts - cl
            score = (cl.sum() * _gini(cl) + cr.sum() * _gini(cr)) / counts.sum()
            if score < parent - 1e-12 and (best is None or score < best[0] - 1e-12):
                best = (score, j, float(t))
    if best is None:
        return leaf
    score, j, t = best
    left = x[:, j] <= t
    a, b = _fit(x[left], y[left], k, depth - 1, w[left]), _fit(x[~left], y[~left], k, depth - 1, w[~left])
    if a == b and a[0] == "leaf":   # both sides predict the same class: the split changes nothing
        return leaf
    # gain: the drop in (weighted) Gini impurity, times the node's weight (the importance of the split)
    return ("split", j, t, a, b, float(counts.sum() * (parent - score)))


def _predict(node, x: np.ndarray) -> np.ndarray:
    if node[0] == "leaf":
        return np.full(len(x), node[1], dtype=np.int64)
    _, j, t, left, right, _ = node
    go_left = x[:, j] <= t
    out = np.empty(len(x), dtype=np.int64)
    out[go_left] = _predict(left, x[go_left])
    out[~go_left] = _predict(right, x[~go_left])
    return out


def _importance(node, names: list[str], out: dict[str, float] | None = None) -> dict[str, float]:
    """Summed split gain per feature (a one-hot column counts for its feature)."""
    out = {} if out is None else out
    if node[0] == "split":
        base = names[node[1]].split("=")[0]
        out[base] = out.get(base, 0.0) + node[5]
        _importance(node[3], names, out)
        _importance(node[4], names, out)
    return out


def _used(node, names: list[str]) -> list[str]:
    """The features the rule rests on, most important first: those with at least :data:`MIN_SHARE` of the
    largest feature's gain (a second-level split that fits noise is not named as the shortcut)."""
    imp = _importance(node, names)
    if not imp:
        return []
    top = max(imp.values())
    return [f for f, g in sorted(imp.items(), key=lambda kv: (-kv[1], kv[0])) if g >= MIN_SHARE * top]


def _describe(node, names: list[str], classes, indent: str = "") -> str:
    if node[0] == "leaf":
        return f"{indent}-> {classes[node[1]]}"
    _, j, t, left, right, _ = node
    cond = f"{names[j]}" if "=" in names[j] else f"{names[j]} <= {t:.4g}"
    return (f"{indent}if {cond}:\n{_describe(left, names, classes, indent + '  ')}\n{indent}else:\n"
            f"{_describe(right, names, classes, indent + '  ')}")


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y``."""
    classes = np.unique(y)
    return float(np.mean([np.mean(pred[y == c] == c) for c in classes]))


def bootstrap_balanced_accuracy(y: np.ndarray, pred: np.ndarray, seed: int = 0,
                                n_resamples: int = N_RESAMPLES) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the balanced accuracy (images resampled, seeded)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_resamples, len(y)))
    yy, hit = y[idx], (pred[idx] == y[idx])
    per = []
    for c in np.unique(y):
        mask = yy == c
        n = mask.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per.append(np.where(n > 0, (hit & mask).sum(axis=1) / np.maximum(n, 1), np.nan))
    stats = np.nanmean(np.stack(per, axis=1), axis=1)
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def shortcut_check(ids: list[str], labels: list[int], splits: list[str], metadata: list[dict],
                   classes, seed: int = 0) -> ShortcutResult:
    """The check of one dataset from its images' ids, labels, splits and :func:`image_metadata` (plus any
    extra labels-table columns) dicts; fitted on split 'train', scored on split 'test'."""
    y = np.asarray(labels, dtype=np.int64)
    split = np.asarray(splits, dtype=object)
    train, test = split == "train", split == "test"
    res = ShortcutResult(n_train=int(train.sum()), n_test=int(test.sum()))
    names_of = (lambda sel: sorted({classes[c] for c in y[sel]}))
    for what, sel in (("training", train), ("test", test)):
        present = names_of(sel)
        if len(present) < 2:
            res.reason = (f"the {what} split has {'no image' if not present else f'one class ({present[0]!r})'}"
                          f": balanced accuracy needs two classes")
            return res
    x, names = _columns(metadata)
    res.candidates = tuple(sorted({n.split("=")[0] for n in names}))
    if not names:
        res.reason = "the metadata is the same for every image: nothing to predict the label from"
        return res
    k = int(y.max()) + 1
    freq = np.bincount(y[train], minlength=k).astype(np.float64)
    w = np.where(freq[y[train]] > 0, 1.0 / np.maximum(freq[y[train]], 1), 0.0)
    tree = _fit(x[train], y[train], k, DEPTH, w)
    pred = _predict(tree, x[test])
    res.balanced_accuracy = balanced_accuracy(y[test], pred)
    res.ci_low, res.ci_high = bootstrap_balanced_accuracy(y[test], pred, seed)
    res.chance = 1.0 / len(np.unique(y[test]))
    res.features = tuple(_used(tree, names))
    res.rule = _describe(tree, names, classes)
    res.flagged = res.beats_chance() and any(f not in CONTENT_FEATURES for f in res.features)
    res.test_predictions = {i: int(p) for i, p in zip(np.asarray(ids, dtype=object)[test], pred)}
    return res


def agreement(rule: dict[str, int], model: dict[str, int]) -> tuple[float | None, int]:
    """(share of the test images both predicted on which the model's class equals the rule's, n images)."""
    both = [i for i in rule if i in model]
    if not both:
        return None, 0
    return float(np.mean([rule[i] == model[i] for i in both])), len(both)
