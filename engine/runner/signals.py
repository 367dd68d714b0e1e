"""The signals that end a run cleanly (process policy: the runner's, not the store's).

Standard library only, so ``python -m engine run`` installs the handlers *before* it imports torch and the
models (engine/cli).

* :func:`install_signal_handlers` turns SIGTERM and SIGINT (Ctrl-C) into :class:`Interrupted`
  (a ``KeyboardInterrupt``), raised in the main thread, so ``finally`` blocks mark the run
  interrupted and remove the staging copy.  Inside :func:`signals_deferred` (a publish, a cleanup)
  a signal is held back and raised when the block ends, so it never tears a file operation in two.
* :data:`SIGNALS` is the guard the runner hands the results writer (``ResultWriter(guard=SIGNALS)``: the
  store's ``Guard`` interface, engine/store/group_commit.py): the writer holds signals back while it
  publishes and while a unit's rows are being written.
"""
from __future__ import annotations

import contextlib
import signal


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


class _SignalGuard:
    """The store's ``Guard`` (``hold`` / ``release``, nesting) over :func:`hold_signals` / :func:`release_signals`."""

    def hold(self) -> None:
        hold_signals()

    def release(self) -> None:
        release_signals()


SIGNALS = _SignalGuard()
