"""Compute precision and CPU threads: one home for the ``precision`` option and the thread default.

``precision`` is ``"fp32"`` or ``"bf16"``.  ``bf16`` means ``torch.autocast(dtype=torch.bfloat16)``
around the forward (and, through autograd, the backward) passes: matmuls and convolutions run in
bfloat16 with float32 accumulation, while the parameters, the optimiser state, the loss, the softmax
probabilities, every explanation map and every score stay float32.  Autocast works on CPU and CUDA
alike, so the bf16 path is tested on CPU.  Default: ``bf16`` on CUDA, ``fp32`` on CPU
(:func:`default_precision`).  Which stages honour ``bf16`` and which always run in float32 is
decided per method (``MethodInfo.reduced_precision``) and documented in docs/methods.md.

Threads: :func:`default_threads` gives each worker process ``cores // workers`` intra-op threads
(at least one; capped by ``OMP_NUM_THREADS`` when that is set), so workers together never use more
threads than the machine has cores.  ``cores`` is this process's CPU affinity, not the machine's
total.
"""
from __future__ import annotations

import contextlib
import logging
import os

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16")


# Stages that follow a bf16 run's precision; the others run in float32 whatever the run's precision.
# Chosen from measured agreement on trained demo models (docs/methods.md, "Precision"; rule: pointing-game
# hits agree on >= 99 % of images and AUCs within 2e-3): on CPU bf16, every method's maps moved insertion/
# deletion AUCs by more than 2e-3 (1.1e-3 to 0.17) and bf16 forwards moved insertion AUCs by 3.1e-3, so
# explanations (and MPRT) and the faithfulness forwards stay fp32 until a measurement says otherwise.
# Within the explain stage, methods registered with reduced_precision=False stay fp32 even when it is on.
REDUCED_PRECISION_STAGES = {"train": True, "predict": True, "explain": False, "faithfulness": False,
                            "pretrain": False}


def stage_precision(stage: str, precision: str) -> str:
    """The precision ``stage`` runs at in a run of ``precision`` (see REDUCED_PRECISION_STAGES)."""
    return precision if REDUCED_PRECISION_STAGES[stage] else "fp32"


def default_precision(device: str | torch.device) -> str:
    """``bf16`` on CUDA, ``fp32`` elsewhere."""
    return "bf16" if torch.device(device).type == "cuda" else "fp32"


def resolve_precision(precision: str | None, device: str | torch.device) -> str:
    """``precision``, or the device's default when None; one-line error for anything else."""
    if precision is None:
        return default_precision(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {list(PRECISIONS)}")
    return precision


def autocast(device: str | torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to bfloat16 on ``device``'s type when ``precision == 'bf16'``; a no-op for ``fp32``
    (which also switches off an autocast region the caller may be in)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {list(PRECISIONS)}")
    dev = torch.device(device)
    kind = dev.type if dev.type in ("cpu", "cuda") else "cpu"
    return torch.autocast(device_type=kind, dtype=torch.bfloat16, enabled=precision == "bf16")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(workers: int = 1, cores: int | None = None) -> int:
    """Intra-op threads per worker process: ``cores // workers``, at least 1 (never oversubscribed).
    An ``OMP_NUM_THREADS`` set in the environment caps it (the caller already chose)."""
    cores = available_cores() if cores is None else cores
    n = max(1, cores // max(1, workers))
    env = os.environ.get("OMP_NUM_THREADS", "")
    return min(n, int(env)) if env.isdigit() and int(env) > 0 else n


def set_threads(threads: int | None, workers: int = 1) -> int:
    """Set torch's intra-op threads of this process (``None``: :func:`default_threads`); returns it."""
    n = default_threads(workers) if threads is None else int(threads)
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
        log.debug("torch intra-op threads: %d", n)
    return n
