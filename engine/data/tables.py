"""Tables (labels, CSV boxes): CSV, TSV or Parquet by extension, read as text cells."""
from __future__ import annotations

import csv
import math
from pathlib import Path

from .errors import DatasetError

TABLE_EXTENSIONS = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def _cell(v) -> str:
    """A Parquet value as the text a CSV would hold (integral floats lose their '.0')."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and non-empty rows of a table; ``.tsv`` (and ``.txt``) are tab-separated, ``.parquet``
    is read with pyarrow, anything else as CSV (UTF-8, BOM tolerated)."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DatasetError(f"{path}: table not found")
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
            t = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise DatasetError(f"{path}: not a readable Parquet file ({exc})") from None
        header = [str(c) for c in t.column_names]
        cols = [t.column(i).to_pylist() for i in range(t.num_columns)]
        rows = [[_cell(c[i]) for c in cols] for i in range(t.num_rows)]
    else:
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                reader = csv.reader(fh, delimiter="\t" if suffix in (".tsv", ".txt") else ",")
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
    """Index of the first candidate header present (case- and whitespace-insensitive)."""
    cands = (candidates,) if isinstance(candidates, str) else candidates
    norm = {h.strip().lower(): i for i, h in enumerate(header)}
    for c in cands:
        if c.strip().lower() in norm:
            return norm[c.strip().lower()]
    raise DatasetError(f"{path}: no {what} column; looked for {list(cands)}, found {header}")
