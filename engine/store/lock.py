"""One writer per results database: :class:`RunLock` is an exclusive ``flock`` on ``<db>.lock``; the
:class:`~engine.store.ResultWriter` takes it itself unless it is handed one already held.

Standard library only, so ``python -m engine run`` takes the lock *before* it imports torch and the models:
a second run on the same database is refused at once.  (The signals that end a run cleanly are the
runner's: engine/runner/signals.py.)
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path


class WriterBusy(RuntimeError):
    """Another process holds the database's run lock."""


class RunLock:
    def __init__(self, db_path: str | Path):
        self.db_path = Path(os.path.realpath(db_path))  # a symlinked database shares its target's lock
        self.path = Path(str(self.db_path) + ".lock")
        self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self, timeout: float = 0.0) -> "RunLock":
        """Take the lock, waiting up to ``timeout`` seconds; raises :class:`WriterBusy`."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if self._same_file(fh):
                    break
                fh.close()  # a refused run removed the file we waited on: lock the one at the path now
                fh = open(self.path, "a+")
                continue
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.close()
                    raise WriterBusy(f"{self.db_path}: another run is writing to this database; "
                                     f"wait for it to finish (or use --wait SECONDS) or use another --db") from None
                time.sleep(0.5)
        self._fh = fh
        return self

    def _same_file(self, fh) -> bool:
        try:
            return os.fstat(fh.fileno()).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def release(self, remove: bool = False) -> None:
        """Let go; ``remove``: delete the lock file too (a run refused before it wrote the database leaves
        nothing behind; a waiter on the removed file sees it is gone and locks the new one)."""
        if self._fh is not None:
            if remove:
                self.path.unlink(missing_ok=True)
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "RunLock":
        return self if self.held else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
