"""Read an image file of any supported format into an (H, W, 3) array.

8-bit sources come back as ``uint8`` (so they resample exactly as before); deeper sources (16-bit
PNG/TIFF, float TIFF, DICOM) as ``float32`` in [0, 1]:

* ``intensity = "dtype"``: divide by the type's full range (uint16 by 65535: nothing is clipped);
  ``"minmax"``: stretch each image's own min..max to 0..1 (for 12-bit data in 16-bit containers).
  Float images already within [0, 1] are kept; others are min-max stretched.
* grayscale is repeated to three channels; palette images are expanded through their palette;
* alpha (RGBA, LA, palette transparency): ``alpha = "drop"`` ignores it (as PIL's RGB conversion
  does), ``"black"`` / ``"white"`` composite the image onto that background;
* DICOM (``.dcm`` or the ``DICM`` magic): rescale slope/intercept, then the first WindowCenter /
  WindowWidth of the tags (min-max when absent), MONOCHROME1 inverted; multi-frame: the first frame.

Every failure raises :class:`DatasetError` naming the file and the reason.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from .errors import DatasetError

log = logging.getLogger(__name__)
TIFF_SUFFIXES = (".tif", ".tiff")


def is_dicom(path: Path) -> bool:
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _unit(arr: np.ndarray, intensity: str) -> np.ndarray:
    """Any numeric array -> float32 in [0, 1] (see the module docstring)."""
    a = arr.astype(np.float64)
    if intensity == "minmax" or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        if arr.dtype.kind == "f" and intensity != "minmax" and a.size and 0 <= np.nanmin(a) and np.nanmax(a) <= 1:
            return np.nan_to_num(a).astype(np.float32)
        lo, hi = (float(np.nanmin(a)), float(np.nanmax(a))) if a.size else (0.0, 1.0)
        return np.nan_to_num((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)).astype(np.float32)
    if arr.dtype == bool:
        return a.astype(np.float32)
    info = np.iinfo(arr.dtype)
    return ((a - info.min) / (info.max - info.min)).astype(np.float32)


def _to_rgb(arr: np.ndarray, path: Path, alpha: str, intensity: str) -> np.ndarray:
    """(H, W) / (H, W, C) array of any dtype -> (H, W, 3) uint8 (8-bit input) or float32 in [0, 1]."""
    if arr.ndim == 3 and arr.shape[-1] > 4 and arr.shape[0] <= 4:
        arr = np.moveaxis(arr, 0, -1)  # planar (C, H, W)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DatasetError(f"{path}: unsupported image shape {arr.shape} (expected H x W [x 1-4 channels])")
    eight = arr.dtype == np.uint8
    colour, a = (arr[..., :-1], arr[..., -1]) if arr.shape[-1] in (2, 4) else (arr, None)
    if colour.shape[-1] == 1:
        colour = np.repeat(colour, 3, axis=-1)
    if a is None or alpha == "drop":
        return np.ascontiguousarray(colour) if eight else _unit(colour, intensity)
    c = _unit(colour, intensity)
    w = _unit(a, "dtype")[..., None]
    out = c * w + (1.0 - w) * (1.0 if alpha == "white" else 0.0)
    return (np.round(out * 255).astype(np.uint8)) if eight else out.astype(np.float32)


def _check_pixels(path: Path, w: int, h: int, max_pixels: int):
    if w * h > max_pixels:
        raise DatasetError(f"{path}: image is {w}x{h} = {w * h / 1e6:.1f} Mpx, above max_pixels = {max_pixels}")


@contextlib.contextmanager
def _pixel_limit():
    """PIL's own decompression-bomb limit off while one image's header is opened: the spec's ``max_pixels``
    is the limit (it may raise PIL's as well as lower it), checked by :func:`_check_pixels` from the header,
    before any pixel is decoded."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _read_pil(path: Path, alpha: str, intensity: str, max_pixels: int) -> np.ndarray:
    try:
        with warnings.catch_warnings(), _pixel_limit():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                _check_pixels(path, im.width, im.height, max_pixels)
                im.load()
                mode = im.mode
                if mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                elif mode == "PA":
                    im = im.convert("RGBA")
                elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
                    im = im.convert("L" if mode == "1" else "RGB")
                arr = np.asarray(im)
    except DatasetError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc})") from None
    if mode == "I" and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # PIL's 32-bit mode for 16-bit data
    return _to_rgb(arr, path, alpha, intensity)


def _read_tiff(path: Path, alpha: str, intensity: str, max_pixels: int) -> np.ndarray:
    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            shape = page.shape
            h, w = (shape[1], shape[2]) if len(shape) == 3 and shape[0] <= 4 < shape[-1] else shape[:2]
            _check_pixels(path, int(w), int(h), max_pixels)
            arr = page.asarray()
    except DatasetError:
        raise
    except Exception as exc:  # tifffile raises many types for a damaged file
        raise DatasetError(f"{path}: not a readable TIFF image ({type(exc).__name__}: {exc})") from None
    return _to_rgb(arr, path, alpha, intensity)


def _read_dicom(path: Path, max_pixels: int) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable DICOM file ({exc})") from None
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DatasetError(f"{path}: DICOM file has no pixel data (a report or structured document?)")
    _check_pixels(path, int(ds.get("Columns", 0) or 0), int(ds.get("Rows", 0) or 0), max_pixels)
    try:
        arr = ds.pixel_array
    except Exception as exc:  # missing decoder plugin, truncated data, ...
        raise DatasetError(f"{path}: DICOM pixel data cannot be decoded ({type(exc).__name__}: {exc})") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        if photometric.startswith("YBR"):
            from pydicom.pixels import convert_color_space
            arr = convert_color_space(arr, photometric, "RGB")
        return _to_rgb(arr, path, "drop", "dtype")
    x = arr.astype(np.float64) * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
    centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centre is not None and width is not None:
        c = float(centre[0] if isinstance(centre, pydicom.multival.MultiValue) else centre)
        w = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
        lo, hi = c - w / 2, c + w / 2
    else:
        lo, hi = float(x.min()), float(x.max())
    y = np.clip((x - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(x)
    if photometric == "MONOCHROME1":
        y = 1.0 - y
    return np.repeat(y.astype(np.float32)[..., None], 3, axis=-1)


def read_image(path: Path, *, alpha: str = "drop", intensity: str = "dtype",
               max_pixels: int = 100_000_000) -> np.ndarray:
    """(H, W, 3) array: ``uint8`` for 8-bit sources, ``float32`` in [0, 1] otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: image file not found")
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: empty file (0 bytes)")
    if is_dicom(path):
        return _read_dicom(path, max_pixels)
    if path.suffix.lower() in TIFF_SUFFIXES:
        return _read_tiff(path, alpha, intensity, max_pixels)
    return _read_pil(path, alpha, intensity, max_pixels)


def image_format(path: Path) -> str | None:
    """The format the file's content says (PIL's name, or 'DICOM'), None when unknown."""
    if is_dicom(path):
        return "DICOM"
    try:
        with Image.open(path) as im:
            return im.format
    except (UnidentifiedImageError, OSError, ValueError):
        return None


_EXT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
                ".dcm": "DICOM", ".dicom": "DICOM"}


def extension_mismatch(path: Path) -> str | None:
    """A note when the content's format differs from what the extension says (the file still loads)."""
    expected = _EXT_FORMATS.get(path.suffix.lower())
    actual = image_format(path)
    if expected and actual and actual != expected:
        return f"content is {actual} but the extension {path.suffix!r} says {expected} (loaded by content)"
    return None


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header (DICOM tags, TIFF page, or PIL), None when unreadable."""
    path = Path(path)
    try:
        if is_dicom(path):
            import pydicom
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            return (int(ds.Columns), int(ds.Rows)) if "Rows" in ds and "Columns" in ds else None
        with Image.open(path) as im:
            return im.width, im.height
    except Exception:  # any unreadable header: unknown size (check-data reports the file)
        return None
