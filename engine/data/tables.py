"""Tables (labels, CSV boxes): CSV, TSV or Parquet by extension, read as text cells."""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pyarrow.parquet as pq

from .errors import DatasetError

TABLE_EXTENSIONS = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def _cell(v) -> str:
    """A Parquet value as the text a CSV would hold (integral floats lose their '.0')."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _delimiter(path: Path, first_line: str) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    if path.suffix.lower() == ".txt":  # whichever of tab, comma, semicolon the header uses most
        return max("\t,;", key=first_line.count) if any(c in first_line for c in "\t,;") else "\t"
    return ","


def _norm(name: str) -> str:
    """Header spelling variants compare equal: case, spaces, '_' and '-' are ignored."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and non-empty rows of a table; ``.tsv`` is tab-separated, ``.txt`` tab / comma / semicolon
    (guessed from the header), ``.parquet`` is read with pyarrow, anything else as CSV (UTF-8, BOM
    tolerated)."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DatasetError(f"{path}: table not found")
    if suffix in (".parquet", ".pq"):
        try:
            t = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise DatasetError(f"{path}: not a readable Parquet file ({exc})") from None
        header = [str(c) for c in t.column_names]
        cols = [t.column(i).to_pylist() for i in range(t.num_columns)]
        rows = [[_cell(c[i]) for c in cols] for i in range(t.num_rows)]
    else:
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                reader = csv.reader(fh, delimiter=_delimiter(path, fh.readline()))
                fh.seek(0)
                header = next(reader, None) or []
                rows = list(reader)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DatasetError(f"{path}: not a readable text table ({exc})") from None
    if not header:
        raise DatasetError(f"{path}: empty table (no header)")
    header = [h.strip() for h in header]
    rows = [r for r in rows if any(c.strip() for c in r)]
    return header, rows


def pick_column(header: list[str], candidates: tuple[str, ...] | str, path: Path, what: str) -> int:
    """Index of the first candidate header present (ignoring case, spaces, '_' and '-')."""
    cands = (candidates,) if isinstance(candidates, str) else candidates
    norm = {}
    for i, h in enumerate(header):
        norm.setdefault(_norm(h), i)
    for c in cands:
        if _norm(c) in norm:
            return norm[_norm(c)]
    raise DatasetError(f"{path}: no {what} column; looked for {list(cands)}, found {header}")
