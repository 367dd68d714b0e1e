"""Group commit for the results writer: at most one publish per interval, never half a unit.

A unit of work (a model's training, one chunk of evaluate jobs, ...) is written through several writer
calls and ends with :meth:`GroupCommit.commit`.  With ``publish_every`` > 0 a commit within the interval
since the last publish only marks the unit as finished; a timer thread publishes every finished unit once
the interval has passed -- unless a unit is being written at that moment (a write opens a unit, its commit
closes it), in which case that unit's commit publishes.  The writer's connection is shared with the
timer's thread, so every writer method that touches it runs under the group commit's one mutex
(:func:`serialised`, :func:`writes`).

Why: a publish has a fixed cost (a new catalog file of about 60-110 KB, and small Parquet files); the quick
demo finishes about 100 units in 1.5-4 minutes, so one publish per unit wrote several times the database's
final size.  The price: a reader sees a finished unit up to ``publish_every`` seconds late, and a
``kill -9`` loses the units finished in that last interval (the next run redoes them: their job rows were
not published either).  SIGTERM and Ctrl-C publish them before the run exits.

The interface, both ways (composition: the writer holds a :class:`GroupCommit` as ``group`` and calls it;
the group commit sees nothing of the writer but the :class:`Publisher` it is given):

* the writer gives it a :class:`Publisher` (``pending()``: is there anything to publish; ``publish()``: publish
  now, from the main thread; ``publish_from_timer()``: the same from the timer's thread; ``is_open()``) and
  a :class:`Guard` (``hold()`` / ``release()``, nesting: the critical sections an outside policy may
  protect; the runner passes its signal guard, engine/runner/signals.py; the default guards nothing);
* the writer calls :meth:`GroupCommit.open_unit` on a unit's first write, :meth:`GroupCommit.commit` at its
  end, :meth:`GroupCommit.published` after every publish, :meth:`GroupCommit.close` when it closes, and
  :meth:`GroupCommit.raise_timer_error` before it writes; it runs its connection's work under
  :attr:`GroupCommit.mutex`.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from typing import Protocol

log = logging.getLogger(__name__)


class Guard(Protocol):
    """A critical section an outside policy protects (nesting): the writer holds it while it publishes and
    while a unit's rows are being written (from the main thread)."""

    def hold(self) -> None: ...

    def release(self) -> None: ...


class _NoGuard:
    def hold(self) -> None:
        pass

    def release(self) -> None:
        pass


NO_GUARD: Guard = _NoGuard()


@contextlib.contextmanager
def guarded(guard: Guard):
    """Hold ``guard`` while the block runs."""
    guard.hold()
    try:
        yield
    finally:
        guard.release()


class Publisher(Protocol):
    """What the group commit needs from the writer."""

    def pending(self) -> bool: ...          # something written since the last publish

    def publish(self) -> None: ...          # publish now (main thread; held by the guard)

    def publish_from_timer(self) -> None: ...   # publish now, from the timer's thread (no guard: signals go
    #                                             to the main thread, which waits on the mutex meanwhile)

    def is_open(self) -> bool: ...


def serialised(method):
    """Run a writer method under its group commit's mutex (the publish timer's thread shares the connection);
    the writer keeps its :class:`GroupCommit` as ``group``."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self.group.mutex:
            return method(self, *args, **kwargs)
    return run


def writes(method):
    """A writer's write: under the mutex, and it opens a unit (no timer publish until the unit's commit)."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self.group.mutex:
            self.group.raise_timer_error()
            self.group.open_unit()
            return method(self, *args, **kwargs)
    return run


class GroupCommit:
    def __init__(self, publish_every: float, publisher: Publisher, guard: Guard = NO_GUARD):
        self.publish_every = publish_every
        self.publisher = publisher
        self.guard = guard
        self.mutex = threading.RLock()   # the connection is shared with the publish timer's thread
        self._timer: threading.Timer | None = None
        self._timer_error: BaseException | None = None
        self._last_publish = time.monotonic()
        self.in_unit = False           # a unit's rows are being written (since the last commit)
        self._holding = False          # this unit holds the guard until its commit

    def start(self) -> None:
        """The interval starts now (the writer opened)."""
        self._last_publish = time.monotonic()

    def open_unit(self) -> None:
        """The first write of a unit.  In the main thread, the guard is held until the unit's commit, so an
        interrupt never finds half a unit written (the unit's remaining writes -- at most its summaries --
        take a moment) and every finished unit is published before the run exits."""
        if self.in_unit:
            return
        self.in_unit = True
        if threading.current_thread() is threading.main_thread():
            self.guard.hold()
            self._holding = True

    def close_unit(self) -> None:
        """The unit is complete; the guard is released (a signal held back meanwhile is raised now)."""
        self.in_unit = False
        if self._holding:
            self._holding = False
            self.guard.release()

    def commit(self, now: bool = False) -> None:
        """The end of a unit: everything written so far is complete.  Published at once (atomically)
        when ``now``, when ``publish_every`` is 0 or when the interval since the last publish has passed;
        otherwise by the timer when it has.  Nothing new: nothing is written."""
        with self.mutex:
            try:
                self.raise_timer_error()
                if not self.publisher.pending():
                    return
                wait = self.publish_every - (time.monotonic() - self._last_publish)
                if now or wait <= 0:
                    self.publisher.publish()
                elif self._timer is None:
                    self._timer = threading.Timer(wait, self._on_timer)
                    self._timer.daemon = True
                    self._timer.start()
            finally:
                self.close_unit()

    def published(self) -> None:
        """A publish happened (by whichever path): the interval starts again, no timer is pending."""
        self._last_publish = time.monotonic()
        self.cancel_timer()

    def _on_timer(self) -> None:
        """The timer thread: publish the finished units, unless a unit is being written (its commit
        publishes then, the interval having passed)."""
        with self.mutex:
            if self._timer is threading.current_thread():   # (not a newer timer scheduled meanwhile)
                self._timer = None
            if not self.publisher.is_open() or not self.publisher.pending() or self.in_unit:
                return
            try:
                self.publisher.publish_from_timer()
            except BaseException as exc:   # raised in the main thread at its next commit or close
                log.error("publishing failed: %s", exc)
                self._timer_error = exc

    def raise_timer_error(self) -> None:
        if self._timer_error is not None:
            exc, self._timer_error = self._timer_error, None
            raise exc

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        """The writer closes: no timer, no error kept, the unit (and its guard) ended."""
        self.cancel_timer()
        self._timer_error = None
        self.close_unit()
