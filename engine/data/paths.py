"""Confining a dataset's files to its root, and symlinked folders inside the root.

A path is allowed when it resolves inside the dataset root.  A path that lies inside the root as
written but resolves elsewhere goes through a symbolic link inside the root: without
``follow_symlinks = true`` the whole dataset is refused once, in one line naming the link and the
option; with it, the link's target becomes an allowed root, and a path that resolves outside the root
and outside the target of the link it goes through (``..`` after the link, a link inside the target
pointing further away) is still refused.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import DatasetError


class SymlinkRefused(DatasetError):
    """A path goes through a symlinked folder inside the root and the spec does not follow links."""


def _first_link(lexical: Path, root: Path) -> Path | None:
    """The first component of ``lexical`` below ``root`` that is a symbolic link."""
    cur = root
    for part in lexical.relative_to(root).parts:
        cur = cur / part
        if cur.is_symlink():
            return cur
    return None


def refusal(link: Path) -> SymlinkRefused:
    return SymlinkRefused(f"{link}: symbolic link inside the dataset root (to {link.resolve()}); set "
                          f"follow_symlinks = true in the dataset spec to read through it")


def confine(p: Path, root: Path, follow: bool, where: str, what: str = "path") -> Path:
    """``p`` if it may be read (see the module doc), resolved, or for a path through a followed link
    normalised but not resolved (so it stays relative to ``root`` for the stored paths and the
    fingerprint); raises :class:`DatasetError`."""
    try:
        resolved = p.resolve()
    except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError on a symbolic link loop
        raise DatasetError(f"{where}: {what} {p} is a symbolic link loop") from None
    if resolved.is_relative_to(root):
        return resolved
    lexical = Path(os.path.normpath(p))
    if lexical.is_relative_to(root):
        link = _first_link(lexical, root)
        if link is not None:
            if not follow:
                raise refusal(link)
            if resolved.is_relative_to(link.resolve()):
                return lexical
    raise DatasetError(f"{where}: {what} {resolved} lies outside the dataset root {root}")


def list_files(base: Path, root: Path, follow: bool) -> list[Path]:
    """Every file under ``base`` (sorted), descending into symlinked folders only when ``follow``;
    a symlinked folder met without ``follow`` raises :class:`SymlinkRefused` (one line)."""
    out = []
    seen: set[str] = set()
    for d, dirs, files in os.walk(base, followlinks=follow):
        here = Path(d)
        real = os.path.realpath(d)
        if real in seen:  # a link loop, or two links to one folder: read it once
            dirs[:] = []
            continue
        seen.add(real)
        if not follow:
            for name in sorted(dirs):
                if (here / name).is_symlink():
                    raise refusal(here / name)
        for name in files:
            p = here / name
            if p.is_file():
                out.append(p)
    return sorted(out)
