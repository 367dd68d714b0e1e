"""Command-line values checked before anything is locked, imported or started: each problem is one line
naming the flag and the range (the command then exits 2)."""
from __future__ import annotations

import os
import re

from .. import DEVICE_PATTERN
from .serve import port_problem

MAX_THREADS = 1024  # torch threads per worker: far above any machine's cores, far below what aborts OpenMP
RAY_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9._-]+:\d{1,5}|(ray://)?\[[0-9A-Fa-f:]+\]:\d{1,5})$")


def argument_problem(args) -> str | None:
    """Why the command's flags cannot run (None when they can)."""
    threads = getattr(args, "threads", None)
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        return f"--threads {threads}: expected a number of threads from 1 to {MAX_THREADS}"
    device = getattr(args, "device", None)
    if device is not None and not re.match(DEVICE_PATTERN, device):
        return f"--device {device!r}: not a device; use cpu, cuda, cuda:N or mps (one device)"
    address = getattr(args, "ray_address", None)
    if address is not None:
        if getattr(args, "executor", "local") != "ray":
            return f"--ray-address {address!r} would be ignored: it is for --executor ray"
        if not RAY_ADDRESS.match(address):
            return (f"--ray-address {address!r}: expected 'auto', 'local', HOST:PORT or ray://HOST:PORT "
                    f"(e.g. ray://head-node:10001)")
    if getattr(args, "serve", False) and port_problem(args.port):
        return port_problem(args.port)
    db = getattr(args, "db", None)
    if db is not None and getattr(args, "command", None) in ("run", "demo") and not getattr(args, "dry_run", False):
        return db_problem(db)
    return None


def db_problem(db: str) -> str | None:
    """A database path whose folder cannot hold the database, its lock and its shard folder."""
    folder = os.path.dirname(os.path.abspath(db))
    real = os.path.realpath(folder)
    if real == "/proc" or real.startswith(("/proc/", "/sys/", "/dev/")) or real in ("/sys", "/dev"):
        return f"--db {db}: {real} is a system folder, not a place for a results database"
    probe = folder
    while not os.path.exists(probe):  # the nearest folder that exists must be writable (run creates the rest)
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        return f"--db {db}: {probe} is not a writable folder"
    return None
