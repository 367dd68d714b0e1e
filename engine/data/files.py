"""Files a user names that are not what they seem: named pipes, sockets and devices (opening one can
hang or never end), symbolic-link loops, and TOML nested deeper than the parser's recursion allows.
Every caller turns the reason into its own one-line error naming the file."""
from __future__ import annotations

import errno
import os
import stat
import tomllib
from pathlib import Path

from .errors import DatasetError

_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def special_file(path: str | Path) -> str | None:
    """Why ``path`` must not be opened as a file: 'a named pipe', 'a socket', 'a ... device' or 'a symbolic
    link loop'; None for a regular file, a folder or a path that does not exist (the caller says those)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return "a symbolic link loop" if exc.errno == errno.ELOOP else None
    return next((what for test, what in _KINDS if test(mode)), None)


def parse_toml(text: str) -> dict:
    """``tomllib.loads``, with nesting too deep for the parser reported as a TOML error (not a
    ``RecursionError`` traceback)."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError("arrays or tables nested too deeply") from None


def side_file(root: Path, rel: str, key: str) -> Path:
    """A labels table or a split file: it describes the dataset but is not part of it, so it may lie
    outside the root (``../splits.csv``, an absolute path: a read-only data folder keeps its own files
    untouched); relative paths are relative to the root.  Refused only when it is not a regular file."""
    p = Path(os.path.normpath(Path(root) / Path(rel).expanduser()))
    odd = special_file(p)
    if odd:
        raise DatasetError(f"{p}: {key} is {odd}, not a regular file")
    return p
