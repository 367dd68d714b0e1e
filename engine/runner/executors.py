"""Executors: run units of work here, one after another, or fan them out as Ray tasks.

``executor.map(fn, calls)`` yields ``(index, result, error)`` as units finish; the driver writes
each result as it arrives.  Workers only compute and return; they never open the database.
Ray is optional: the local executor never imports it.

Threads (``--threads`` / ``threads`` in the experiment file): the local executor runs one worker (this
process) with ``threads`` intra-op threads, default every core of its affinity
(:func:`engine.common.precision.default_threads`); each Ray task sets its own torch threads to
``threads``, default 1, and asks Ray for as many CPUs, so the tasks Ray runs side by side never use
more threads than the cluster has cores.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterator

from ..common.precision import set_threads
from ..store.lock import raise_if_interrupted

log = logging.getLogger(__name__)


class LocalExecutor:
    name = "local"

    def __init__(self, threads: int | None = None):
        self.threads = set_threads(threads, workers=1)

    def map(self, fn: Callable, calls: list[dict]) -> Iterator[tuple[int, object, BaseException | None]]:
        for i, kwargs in enumerate(calls):
            try:
                yield i, fn(**kwargs), None
            except Exception as exc:  # one failing unit never stops the run (a signal does)
                raise_if_interrupted(exc)
                log.debug("unit %s failed", fn.__name__, exc_info=True)
                yield i, None, exc

    def close(self) -> None:
        pass


class RayExecutor:
    """Ray tasks, one per unit: ``num_gpus=1`` per task when the device is CUDA, else ``num_cpus``.

    ``address``: ``None`` starts a local Ray instance (``num_cpus`` CPUs); ``"auto"`` or
    ``"ray://host:10001"`` joins a running cluster.  Workers import the engine as the driver does: from
    the installed package (``pip install -e .``; on a cluster, on every node).  Dataset roots and the
    checkpoint folder must be visible at the same paths on every node (a shared filesystem).
    """

    name = "ray"

    def __init__(self, address: str | None = None, device: str = "cpu", num_cpus: int | None = None,
                 cpus_per_task: int = 1, threads: int | None = None):
        try:
            import ray
        except ImportError:
            raise RuntimeError("--executor ray needs Ray: pip install -r requirements-ray.txt") from None
        self.ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            kw = {"address": address} if address else {"num_cpus": num_cpus}
            ray.init(**kw, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        self.threads = threads or cpus_per_task
        self.options = {"num_gpus": 1} if device.startswith("cuda") else {"num_cpus": self.threads}

    def map(self, fn: Callable, calls: list[dict]) -> Iterator[tuple[int, object, BaseException | None]]:
        remote = self.ray.remote(_with_threads).options(max_retries=0, **self.options)
        pending = {remote.remote(fn, self.threads, kwargs): i for i, kwargs in enumerate(calls)}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    yield i, self.ray.get(ref), None
                except Exception as exc:  # RayTaskError wraps the worker's exception
                    raise_if_interrupted(exc)
                    cause = getattr(exc, "cause", None)
                    yield i, None, cause if isinstance(cause, BaseException) else exc

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()


def _with_threads(fn: Callable, threads: int, kwargs: dict):
    """A Ray task: set this worker's torch threads, then run the unit."""
    set_threads(threads)
    return fn(**kwargs)


def make_executor(kind: str, address: str | None = None, device: str = "cpu", threads: int | None = None):
    if kind == "local":
        return LocalExecutor(threads)
    if kind == "ray":
        return RayExecutor(address, device, threads=threads)
    raise ValueError(f"executor {kind!r}; allowed: ['local', 'ray']")
