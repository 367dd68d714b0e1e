"""Executors: run units of work here, one after another, or fan them out as Ray tasks.

``executor.map(fn, calls)`` yields ``(index, result, error)`` as units finish; the driver writes
each result as it arrives.  Workers only compute and return; they never open the database.
Ray is optional: the local executor never imports it.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterator

log = logging.getLogger(__name__)


class LocalExecutor:
    name = "local"

    def map(self, fn: Callable, calls: list[dict]) -> Iterator[tuple[int, object, BaseException | None]]:
        for i, kwargs in enumerate(calls):
            try:
                yield i, fn(**kwargs), None
            except Exception as exc:  # one failing unit never stops the run
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
                 cpus_per_task: int = 1):
        try:
            import ray
        except ImportError:
            raise RuntimeError("--executor ray needs Ray: pip install -r requirements-ray.txt") from None
        self.ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            kw = {"address": address} if address else {"num_cpus": num_cpus}
            ray.init(**kw, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        self.options = {"num_gpus": 1} if device.startswith("cuda") else {"num_cpus": cpus_per_task}

    def map(self, fn: Callable, calls: list[dict]) -> Iterator[tuple[int, object, BaseException | None]]:
        remote = self.ray.remote(fn).options(max_retries=0, **self.options)
        pending = {remote.remote(**kwargs): i for i, kwargs in enumerate(calls)}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    yield i, self.ray.get(ref), None
                except Exception as exc:  # RayTaskError wraps the worker's exception
                    cause = getattr(exc, "cause", None)
                    yield i, None, cause if isinstance(cause, BaseException) else exc

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()


def make_executor(kind: str, address: str | None = None, device: str = "cpu"):
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        return RayExecutor(address, device)
    raise ValueError(f"executor {kind!r}; allowed: ['local', 'ray']")
