"""The dataset spec: where a dataset's files are, how to read them, and which images are scored.

:class:`DatasetSpec` is a frozen dataclass.  Build it directly (keyword arguments, as the demo does)
or from a ``[[datasets]]`` / ``[dataset]`` block of a TOML file with :meth:`DatasetSpec.from_dict`,
which validates every key and names the offending key and its allowed values.
:func:`load_dataset_config` reads such a file; a relative ``root`` resolves against the TOML file's
directory.  Every key is documented in ``docs/datasets.md``.
"""
from __future__ import annotations

import difflib
import os
import string
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .errors import DatasetError
from .files import parse_toml, special_file
from .paths import confine

SPLITS = ("train", "val", "test")
LAYOUTS = ("table", "folders", "split_files", "images")
RESIZE_MODES = ("resize", "letterbox")
BOX_FORMATS = ("voc", "yolo", "coco", "csv")
BOX_COORDS = ("xyxy", "xywh")
ALPHA_MODES = ("drop", "black", "white")
INTENSITY_MODES = ("dtype", "minmax")
TEMPLATE_FIELDS = ("id", "num", "stem", "dir", "label", "split")
MAX_INPUT_SIZE = 2048  # a 2048 x 2048 RGB float image is 48 MiB; far larger sizes only exhaust memory
FILE_KEYS = ("boxes_file", "images_dir")  # paths relative to root, confined to it (labels / splits_csv may lie outside)
TEMPLATE_KEYS = ("image_template", "mask_template", "boxes_template", "split_files")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")


class SpecError(DatasetError):
    """An invalid dataset spec (unknown key, wrong type, value not among the allowed ones)."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's files are and how to read them (every key: ``docs/datasets.md``).

    Templates are paths relative to ``root``; ``{id}`` is the id as written in the labels table,
    ``{num}`` the id as an integer (so ``{num:03d}.bmp`` turns id ``7`` into ``007.bmp``), ``{stem}``
    and ``{dir}`` the id's file stem and folder, ``{label}`` the raw label.
    ``label_column`` / ``id_column`` list accepted header names (tables differ in spelling).
    ``mask_regions`` maps a region name to the mask values that form it, e.g.
    ``(("mask", (128, 255)),)`` for a whole cell coded 128 cytoplasm / 255 nucleus.
    """

    name: str
    root: str
    labels: str | None = None
    image_template: str = "{id}"
    id_column: tuple[str, ...] = ("image", "image_id", "image ID", "id")
    label_column: tuple[str, ...] = ("label", "class", "class label")
    split_column: str | None = None
    classes: tuple[str, ...] | None = None
    mask_template: str | None = None
    mask_regions: tuple[tuple[str, tuple[int, ...]], ...] = ()
    boxes_template: str | None = None
    box_classes: tuple[str, ...] = ()
    box_from_mask: str | None = None  # name of a mask region to derive a 'box_from_mask' region from
    input_size: int = 224
    resize: str = "resize"
    split_seed: int = 0
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    # --- newer keys: left out of to_dict() while at their default, so older specs keep their fingerprints
    layout: str = "table"
    images_dir: str = ""
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS
    exclude: tuple[str, ...] = ()
    label_map: tuple[tuple[str, str], ...] = ()
    group_column: str | None = None
    split_files: str | None = None
    boxes_format: str = "voc"
    boxes_file: str | None = None
    box_coords: str = "xyxy"
    box_columns: tuple[str, ...] | None = None
    box_id_column: tuple[str, ...] = ("image", "image_id", "image ID", "filename", "file", "id")
    box_class_column: str | None = None
    yolo_names: tuple[str, ...] = ()
    segmentation_region: str | None = None
    alpha: str = "drop"
    intensity: str = "dtype"
    max_pixels: int = 100_000_000
    strict: bool = False
    score_split: str = "test"
    score_classes: tuple[str, ...] = ()
    score_only_annotated: bool = True
    score_limit: int | None = None
    score_seed: int = 0
    # --- keys added for issue 13
    splits_csv: str | None = None  # a published split (check-data --splits-out): image_id, split
    follow_symlinks: bool = False  # read through symlinked folders inside the root (targets allowed)
    box_regions: tuple[tuple[str, tuple[str, ...]], ...] = ()  # region name -> box classes
    label_from_boxes: str | tuple[tuple[str, tuple[str, ...]], ...] | None = None  # "largest" or class -> box classes

    def __post_init__(self):
        # JSON round trips give lists; keep the frozen spec hashable and its repr stable
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("mask_regions", "label_map", "box_regions") or (
                    f.name == "label_from_boxes" and v is not None and not isinstance(v, str)):
                pairs = v.items() if isinstance(v, dict) else (v or ())
                if f.name == "mask_regions":
                    v = tuple((str(n), tuple(int(x) for x in _as_list(vals))) for n, vals in pairs)
                elif f.name in ("box_regions", "label_from_boxes"):
                    v = tuple((str(n), tuple(str(x) for x in _as_list(vals))) for n, vals in pairs)
                else:
                    v = tuple((str(a), str(b)) for a, b in pairs)
            elif isinstance(v, list):
                v = tuple(v)
            object.__setattr__(self, f.name, v)

    def to_dict(self) -> dict:
        """JSON-able dict; keys added after the first release are omitted while at their default,
        so an existing dataset's fingerprint does not change."""
        d = asdict(self)
        for f in fields(self):
            if f.name in _ADDED and d[f.name] == f.default:
                del d[f.name]
        return d

    @property
    def mask_region_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.mask_regions)

    @property
    def region_list(self) -> tuple[str, ...]:
        """Every region this dataset can have, in display order: mask regions (and a COCO
        segmentation region) first, then ``box_from_mask``, then the box regions (``box`` or the
        names of ``box_regions``)."""
        names = [*self.mask_region_names] + ([self.segmentation_region] if self.segmentation_region else [])
        if self.box_from_mask:
            names.append("box_from_mask")
        if self.box_regions:
            names += [n for n, _ in self.box_regions]
        elif self.boxes_template or self.boxes_file:
            names.append("box")
        return tuple(names)

    @property
    def mask_region_list(self) -> tuple[str, ...]:
        """The regions that come from masks (or COCO segmentations), in order."""
        return tuple([*self.mask_region_names] + ([self.segmentation_region] if self.segmentation_region else []))

    @property
    def box_region_list(self) -> tuple[str, ...]:
        """The given box regions (``box`` or the ``box_regions`` names), in order; not ``box_from_mask``."""
        return tuple(n for n in self.region_list if n not in self.mask_region_list and n != "box_from_mask")

    @classmethod
    def from_dict(cls, d: dict, base_dir: str | Path | None = None) -> "DatasetSpec":
        """Validate a ``[[datasets]]`` block; a relative ``root`` resolves against ``base_dir``."""
        return cls(**_validate(dict(d), base_dir))


_FIELDS = {f.name: f for f in fields(DatasetSpec)}
_ADDED = set(list(_FIELDS)[list(_FIELDS).index("layout"):])


def _as_list(v) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _where(d: dict) -> str:
    return f"dataset {d.get('name')!r}" if isinstance(d.get("name"), str) else "dataset"


def _err(d: dict, key: str, msg: str) -> SpecError:
    return SpecError(f"{_where(d)}: key {key!r}: {msg}")


def _choice(d, key, allowed):
    if d[key] not in allowed:
        raise _err(d, key, f"{d[key]!r} is not one of {list(allowed)}")


def _str_tuple(d, key, allow_int=True):
    v = d[key]
    vals = _as_list(v)
    ok = (str, int) if allow_int else (str,)
    if any(isinstance(x, bool) or not isinstance(x, ok) for x in vals):
        raise _err(d, key, f"expected a string or a list of strings, got {v!r}")
    d[key] = tuple(str(x) for x in vals)


def _int(d, key, lo=None, none_ok=False):
    v = d[key]
    if v is None and none_ok:
        return
    if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
        raise _err(d, key, f"expected an integer{f' >= {lo}' if lo is not None else ''}, got {v!r}")


def _template(d, key):
    v = d[key]
    if v is None:
        return
    if not isinstance(v, str) or not v:
        raise _err(d, key, f"expected a path template (string), got {v!r}")
    try:
        names = {f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(v) if f is not None}
    except ValueError as exc:
        raise _err(d, key, f"malformed template {v!r} ({exc})") from None
    bad = sorted(names - set(TEMPLATE_FIELDS))
    if bad:
        raise _err(d, key, f"template {v!r} uses {bad}; the allowed fields are {list(TEMPLATE_FIELDS)}")


def _regions(d):
    v = d["mask_regions"]
    pairs = v.items() if isinstance(v, dict) else v
    out = []
    try:
        for name, vals in pairs:
            vals = _as_list(vals)
            if not isinstance(name, str) or not vals or any(
                    isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= 65535 for x in vals):
                raise ValueError
            out.append((name, tuple(vals)))
    except (TypeError, ValueError):
        raise _err(d, "mask_regions", "expected a table of region name -> mask values (integers 0..65535), "
                                      f"e.g. {{ nucleus = [255], cell = [128, 255] }}; got {v!r}") from None
    d["mask_regions"] = tuple(out)


def _class_table(d, key):
    """A table name -> box class names (``box_regions``, ``label_from_boxes``)."""
    v = d[key]
    pairs = v.items() if isinstance(v, dict) else v
    out = []
    try:
        for name, vals in pairs:
            vals = _as_list(vals)
            if not isinstance(name, str) or not name or not vals or any(
                    isinstance(x, bool) or not isinstance(x, (str, int)) for x in vals):
                raise ValueError
            out.append((name, tuple(str(x) for x in vals)))
    except (TypeError, ValueError):
        raise _err(d, key, f"expected a table of name -> box class names, e.g. "
                           f"{{ platelets = [\"Platelets\"] }}; got {v!r}") from None
    if not out:
        raise _err(d, key, "the table is empty")
    d[key] = tuple(out)


def _validate(d: dict, base_dir) -> dict:
    unknown = sorted(set(d) - set(_FIELDS))
    if unknown:
        hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, _FIELDS, 1)) else repr(k)
                 for k in unknown]
        raise SpecError(f"{_where(d)}: unknown key(s) {', '.join(hints)}; valid keys: {sorted(_FIELDS)}")
    for key in ("name", "root"):
        if not isinstance(d.get(key), str) or not d[key].strip():
            raise _err(d, key, "required (a non-empty string)")
    full = {k: d.get(k, f.default) for k, f in _FIELDS.items()}
    full["root"] = _resolve_root(d["root"], base_dir)
    for key in ("labels", "split_column", "group_column", "box_from_mask", "box_class_column",
                "segmentation_region", "boxes_file", "images_dir"):
        if full[key] is not None and not isinstance(full[key], str):
            raise _err(full, key, f"expected a string, got {full[key]!r}")
    for key in ("image_template", "mask_template", "boxes_template", "split_files"):
        _template(full, key)
    for key in ("id_column", "label_column", "box_id_column"):
        _str_tuple(full, key, allow_int=False)
    for key in ("box_classes", "yolo_names", "score_classes", "exclude"):
        _str_tuple(full, key)
    _str_tuple(full, "extensions", allow_int=False)
    full["extensions"] = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in full["extensions"])
    if full["classes"] is not None:
        _str_tuple(full, "classes")
        if len(set(full["classes"])) != len(full["classes"]):
            raise _err(full, "classes", f"repeated class names in {list(full['classes'])}")
    if full["box_columns"] is not None:
        _str_tuple(full, "box_columns", allow_int=False)
        if len(full["box_columns"]) != 4:
            raise _err(full, "box_columns", f"expected 4 column names, got {list(full['box_columns'])}")
    lm = full["label_map"]
    try:
        pairs = lm.items() if isinstance(lm, dict) else lm
        full["label_map"] = tuple((str(k), str(v)) for k, v in pairs)
    except (TypeError, ValueError):
        raise _err(full, "label_map", f"expected a table raw label -> class name, got {lm!r}") from None
    _regions(full)
    if full["box_regions"]:
        _class_table(full, "box_regions")
    lfb = full["label_from_boxes"]
    if lfb is not None and not (isinstance(lfb, str) and lfb == "largest"):
        if isinstance(lfb, str):
            raise _err(full, "label_from_boxes", f"{lfb!r} is not 'largest' or a table class -> box classes")
        _class_table(full, "label_from_boxes")
    if full["splits_csv"] is not None and not isinstance(full["splits_csv"], str):
        raise _err(full, "splits_csv", f"expected a string, got {full['splits_csv']!r}")
    for key, allowed in (("layout", LAYOUTS), ("resize", RESIZE_MODES), ("boxes_format", BOX_FORMATS),
                         ("box_coords", BOX_COORDS), ("alpha", ALPHA_MODES), ("intensity", INTENSITY_MODES),
                         ("score_split", SPLITS + ("all",))):
        _choice(full, key, allowed)
    _int(full, "input_size", lo=1)
    if full["input_size"] > MAX_INPUT_SIZE:
        raise _err(full, "input_size", f"{full['input_size']} is above the maximum {MAX_INPUT_SIZE} (images are "
                                       f"resized to input_size x input_size before the model sees them)")
    _int(full, "max_pixels", lo=1)
    _int(full, "split_seed")
    _int(full, "score_seed")
    _int(full, "score_limit", lo=1, none_ok=True)
    for key in ("strict", "score_only_annotated", "follow_symlinks"):
        if not isinstance(full[key], bool):
            raise _err(full, key, f"expected true or false, got {full[key]!r}")
    fr = full["split_fractions"]
    if (not isinstance(fr, (list, tuple)) or len(fr) != 3 or any(isinstance(x, bool) or not isinstance(x, (int, float))
                                                                  or x < 0 for x in fr) or abs(sum(fr) - 1) > 1e-6):
        raise _err(full, "split_fractions", f"expected three non-negative numbers (train, val, test) summing to 1, "
                                            f"got {fr!r}")
    full["split_fractions"] = tuple(float(x) for x in fr)
    _confined(full)
    _cross_checks(full)
    return full


def _cross_checks(d: dict):
    if d["layout"] == "table" and not d["labels"]:
        raise _err(d, "labels", "required with layout = 'table' (the labels table, relative to root)")
    if d["layout"] == "split_files" and not d["split_files"]:
        raise _err(d, "split_files", "required with layout = 'split_files'")
    if d["split_files"] and "{split}" not in d["split_files"]:
        raise _err(d, "split_files", f"template {d['split_files']!r} must contain {{split}}")
    given = [k for k in ("split_files", "split_column", "splits_csv") if d[k]]
    if len(given) > 1:
        raise _err(d, given[1], f"give only one of split_files, split_column and splits_csv (got {given})")
    has_boxes = bool(d["boxes_template"] or d["boxes_file"])
    if d["layout"] == "images" and not d["label_from_boxes"]:
        raise _err(d, "label_from_boxes", "required with layout = 'images' (the images carry no label: e.g. "
                                          "label_from_boxes = { platelets = [\"Platelets\"] } or 'largest')")
    for key in ("label_from_boxes", "box_regions"):
        if d[key] and not has_boxes:
            raise _err(d, key, "needs box annotations (boxes_template or boxes_file)")
    if d["label_from_boxes"] and d["layout"] in ("table", "folders"):
        raise _err(d, "label_from_boxes", f"layout {d['layout']!r} gives the labels; label_from_boxes is for "
                                          f"layout = 'images' or 'split_files'")
    lfb = d["label_from_boxes"]
    if lfb and lfb != "largest" and d["classes"] and len(d["classes"]) != len(lfb) + 1:
        raise _err(d, "classes", f"label_from_boxes gives {len(lfb) + 1} classes (the negative first, then "
                                 f"{[k for k, _ in lfb]}); classes lists {len(d['classes'])}")
    if d["label_from_boxes"] == "largest" and not (d["classes"] or d["yolo_names"]):
        raise _err(d, "label_from_boxes", "'largest' needs the box class names: set classes (or yolo_names)")
    if d["mask_template"] and not d["mask_regions"]:
        raise _err(d, "mask_regions", "required with mask_template, e.g. mask_regions = { lesion = [255] }")
    fmt = d["boxes_format"]
    if fmt in ("voc", "yolo") and d["boxes_file"]:
        raise _err(d, "boxes_file", f"boxes_format = {fmt!r} reads one file per image: use boxes_template")
    if fmt in ("coco", "csv") and d["boxes_template"]:
        raise _err(d, "boxes_template", f"boxes_format = {fmt!r} reads one file: use boxes_file")
    if fmt in ("coco", "csv") and not d["boxes_file"]:
        raise _err(d, "boxes_file", f"required with boxes_format = {fmt!r}")
    if d["segmentation_region"] and fmt != "coco":
        raise _err(d, "segmentation_region", "only COCO annotations carry segmentations (boxes_format = 'coco')")
    regions = [n for n, _ in d["mask_regions"]] + ([d["segmentation_region"]] if d["segmentation_region"] else [])
    if d["box_from_mask"] and d["box_from_mask"] not in regions:
        raise _err(d, "box_from_mask", f"{d['box_from_mask']!r} is not a mask region; the regions are {regions}")
    reserved = {"box", "box_from_mask"} & set(regions)
    if reserved:
        raise _err(d, "mask_regions", f"region names {sorted(reserved)} are reserved for boxes")
    clash = sorted(set(regions + ["box_from_mask"]) & {n for n, _ in d["box_regions"]})
    if clash:
        raise _err(d, "box_regions", f"region names {clash} are already used by the mask regions")
    if d["classes"] and d["score_classes"]:
        bad = sorted(set(d["score_classes"]) - set(d["classes"]))
        if bad:
            raise _err(d, "score_classes", f"{bad} are not among the classes {list(d['classes'])}")


def _escapes(rel: str) -> bool:
    """``rel`` (a path relative to the root) is absolute or climbs out of the root."""
    norm = os.path.normpath(rel)
    return os.path.isabs(rel) or norm == ".." or norm.startswith(".." + os.sep)


def _confined(d: dict):
    """Every file key and template stays inside the dataset root (checked on the text here; the files
    themselves, symlinks included, are checked again where they are opened: :func:`inside_root`)."""
    for key in FILE_KEYS:
        if isinstance(d[key], str) and d[key] and _escapes(d[key]):
            raise _err(d, key, f"{d[key]!r} lies outside the dataset root (paths are relative to root)")
    sample = {"id": "x", "num": 0, "stem": "x", "dir": "x", "label": "x", "split": "train"}
    for key in TEMPLATE_KEYS:
        if d[key]:
            try:
                rel = d[key].format(**sample)
            except (ValueError, KeyError, IndexError, TypeError):
                continue  # the template check reports a malformed template
            if _escapes(rel):
                raise _err(d, key, f"{d[key]!r} lies outside the dataset root (paths are relative to root)")


def inside_root(root: str | Path, rel: str, key: str, follow: bool = False) -> Path:
    """``root / rel`` where it may be read (:func:`engine.data.paths.confine`: symbolic links out of the
    root only with ``follow_symlinks``); :class:`DatasetError` naming ``key`` when it lies outside."""
    base = Path(root).resolve()
    return confine(base / rel, base, follow, str(base), key)


def _resolve_root(root: str, base_dir) -> str:
    p = Path(root).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return str(p.resolve())


def load_dataset_config(path: str | Path) -> list[DatasetSpec]:
    """Specs of a TOML file with ``[[datasets]]`` blocks (an experiment file) or one ``[dataset]`` table.

    A relative ``root`` resolves against the TOML file's own directory."""
    path = Path(path)
    odd = special_file(path)
    if odd:
        raise SpecError(f"{path}: is {odd}, not a regular file")
    try:
        with open(path, "rb") as fh:
            doc = parse_toml(fh.read().decode("utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a folder, not a TOML file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not a valid TOML file ({exc})") from None
    blocks = doc.get("datasets")
    if blocks is None and isinstance(doc.get("dataset"), dict):
        blocks = [doc["dataset"]]
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, dict) for b in blocks):
        raise SpecError(f"{path}: expected [[datasets]] blocks or a [dataset] table")
    base = path.resolve().parent
    specs = []
    for b in blocks:
        try:
            specs.append(DatasetSpec.from_dict(b, base_dir=base))
        except SpecError as exc:
            raise SpecError(f"{path}: {exc}") from None
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise SpecError(f"{path}: dataset names repeat: {names}")
    return specs
