"""Group commit for the results writer: at most one publish per interval, never half a unit.

A unit of work (a model's training, one chunk of evaluate jobs, ...) is written through several writer
calls and ends with :meth:`GroupCommit.commit`.  With ``publish_every`` > 0 a commit within the interval
since the last publish only marks the unit as finished; a timer thread publishes every finished unit once
the interval has passed -- unless a unit is being written at that moment (a write opens a unit, its commit
closes it), in which case that unit's commit publishes.  The writer's connection is shared with the
timer's thread, so every method that touches it runs under one mutex (:func:`serialised`, :func:`writes`).

Why: a publish has a fixed cost (a new catalog file of about 60-110 KB, and small Parquet files); the quick
demo finishes about 100 units in 1.5-4 minutes, so one publish per unit wrote several times the database's
final size.  The price: a reader sees a finished unit up to ``publish_every`` seconds late, and a
``kill -9`` loses the units finished in that last interval (the next run redoes them: their job rows were
not published either).  SIGTERM and Ctrl-C publish them before the run exits.
"""
from __future__ import annotations

import functools
import logging
import threading
import time

from .lock import hold_signals, release_signals

log = logging.getLogger(__name__)


def serialised(method):
    """Run ``method`` under the writer's mutex (the publish timer's thread shares the connection)."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._mutex:
            return method(self, *args, **kwargs)
    return run


def writes(method):
    """A write: under the mutex, and it opens a unit (no timer publish until the unit's commit)."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._mutex:
            self._raise_timer_error()
            self._open_unit()
            return method(self, *args, **kwargs)
    return run


class GroupCommit:
    """The publishing side of :class:`~engine.store.writer.ResultWriter` (which provides ``con``,
    ``_dirty``, ``_publish`` and ``_publish_now``)."""

    def _init_group_commit(self, publish_every: float) -> None:
        self.publish_every = publish_every
        self._mutex = threading.RLock()   # the connection is shared with the publish timer's thread
        self._timer: threading.Timer | None = None
        self._timer_error: BaseException | None = None
        self._last_publish = time.monotonic()
        self.in_unit = False           # a unit's rows are being written (since the last commit)
        self._holding = False          # this unit holds SIGTERM / SIGINT back until its commit

    def _open_unit(self) -> None:
        """The first write of a unit.  In the main thread, signals are held back until the unit's commit,
        so an interrupt never finds half a unit written (the unit's remaining writes -- at most its
        summaries -- take a moment) and every finished unit is published before the run exits."""
        if self.in_unit:
            return
        self.in_unit = True
        if threading.current_thread() is threading.main_thread():
            hold_signals()
            self._holding = True

    def _close_unit(self) -> None:
        """The unit is complete; a signal held back meanwhile is raised now (after the publish decision)."""
        self.in_unit = False
        if self._holding:
            self._holding = False
            release_signals()

    def commit(self, now: bool = False) -> None:
        """The end of a unit: everything written so far is complete.  Published at once (atomically)
        when ``now``, when ``publish_every`` is 0 or when the interval since the last publish has passed;
        otherwise by the timer when it has.  Nothing new (only this run's own ``runs`` row changed):
        nothing is written."""
        with self._mutex:
            try:
                self._raise_timer_error()
                if not self._dirty:
                    return
                wait = self.publish_every - (time.monotonic() - self._last_publish)
                if now or wait <= 0:
                    self._publish()
                elif self._timer is None:
                    self._timer = threading.Timer(wait, self._on_timer)
                    self._timer.daemon = True
                    self._timer.start()
            finally:
                self._close_unit()

    def _on_timer(self) -> None:
        """The timer thread: publish the finished units, unless a unit is being written (its commit
        publishes then, the interval having passed).  No signal deferral here: signals go to the main
        thread, whose interrupt path waits on the mutex until this publish is complete."""
        with self._mutex:
            if self._timer is threading.current_thread():   # (not a newer timer scheduled meanwhile)
                self._timer = None
            if self.con is None or not self._dirty or self.in_unit:
                return
            try:
                self._publish_now()
            except BaseException as exc:   # raised in the main thread at its next commit or close
                log.error("publishing %s failed: %s", self.db_path, exc)
                self._timer_error = exc

    def _raise_timer_error(self) -> None:
        if self._timer_error is not None:
            exc, self._timer_error = self._timer_error, None
            raise exc

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

