"""One writer per results database, and the signals that end a run cleanly.

Standard library only, so ``python -m engine run`` takes the lock (and installs the signal handlers)
*before* it imports torch and the models: a second run on the same database is refused at once.

* :class:`RunLock` is an exclusive ``flock`` on ``<db>.lock``; the :class:`~engine.store.ResultWriter`
  takes it itself unless it is handed one already held.
* :func:`install_signal_handlers` turns SIGTERM and SIGINT (Ctrl-C) into :class:`Interrupted`
  (a ``KeyboardInterrupt``), raised in the main thread, so ``finally`` blocks mark the run
  interrupted and remove the staging copy.  Inside :func:`signals_deferred` (a publish, a cleanup)
  a signal is held back and raised when the block ends, so it never tears a file operation in two.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import signal
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


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived; ``signum`` says which (the exit status is 128 + signum)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _State:
    depth = 0            # nesting of signals_deferred blocks
    pending: int | None = None
    received: int | None = None  # the first signal of this process's run


def _handler(signum, frame):
    _State.received = _State.received or signum
    if _State.depth:
        _State.pending = _State.pending or signum
        return
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    """SIGTERM and SIGINT raise :class:`Interrupted` in the main thread (call from the main thread)."""
    _State.received = _State.pending = None
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _handler)


def interrupt_signal(exc: BaseException) -> int | None:
    """The signal behind ``exc``: an :class:`Interrupted`, a bare ``KeyboardInterrupt`` (SIGINT), or any
    exception raised while a signal was delivered (DuckDB turns one into ``RuntimeError('Query
    interrupted')``); None for an ordinary error."""
    if isinstance(exc, Interrupted):
        return exc.signum
    if _State.received is not None and signal.getsignal(signal.SIGTERM) is _handler:
        return _State.received
    return int(signal.SIGINT) if isinstance(exc, KeyboardInterrupt) else None


def raise_if_interrupted(exc: BaseException) -> None:
    """Re-raise as :class:`Interrupted` when ``exc`` came from a signal (so no ``except Exception`` that
    records a failed unit and goes on swallows a SIGTERM / Ctrl-C)."""
    signum = interrupt_signal(exc)
    if signum is not None:
        raise (exc if isinstance(exc, Interrupted) else Interrupted(signum)) from exc


def hold_signals() -> None:
    """Start holding SIGTERM / SIGINT back (nests); :func:`release_signals` ends it."""
    _State.depth += 1


def release_signals() -> None:
    """End one :func:`hold_signals`; a signal that arrived meanwhile is raised when the last hold ends."""
    _State.depth = max(_State.depth - 1, 0)
    if _State.depth == 0 and _State.pending is not None:
        signum, _State.pending = _State.pending, None
        if signal.getsignal(signal.SIGTERM) is _handler:
            raise Interrupted(signum)


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGTERM / SIGINT back while the block runs; one that arrived is raised when it ends."""
    hold_signals()
    try:
        yield
    finally:
        release_signals()
