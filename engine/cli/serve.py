"""``python -m engine serve``: the dashboard over one database, and nothing else (no data generated, no
run started, nothing written but Streamlit's own output); the dashboard process that ``run --serve`` /
``demo --serve`` start beside their run; the port check both share."""
from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

from .. import PROJECT_ROOT
from ..store.read import DEFAULT_DB

HOST = "127.0.0.1"
PORT = 8501


def port_problem(port: int) -> str | None:
    """Why the dashboard cannot listen on ``port`` (out of range, or taken), or None."""
    if not 1 <= port <= 65535:
        return f"--port {port}: expected a TCP port from 1 to 65535"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError as exc:
            why = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
            return f"--port {port}: cannot listen on {HOST}:{port} ({why})"
    return None


def dashboard_cmd(db: Path, port: int) -> tuple[list[str], dict]:
    env = {**os.environ, "XAI_DB": str(db.resolve())}
    cmd = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app.py"), "--server.address", HOST,
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    return cmd, env


def start_dashboard(db: Path, port: int) -> subprocess.Popen:
    """Start the dashboard in the background (it shows whatever the run has committed, and the run's
    progress, while the run goes on); its output goes to ``<db folder>/logs/dashboard.log``."""
    cmd, env = dashboard_cmd(db, port)
    logs = db.resolve().parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "dashboard.log", "ab") as out:
        return subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def wait_dashboard(proc: subprocess.Popen, url: str) -> int:
    """Keep serving until Ctrl+C (or until the dashboard itself stops, which is then said)."""
    rc = proc.poll()
    if rc is not None:
        print(f"the dashboard at {url} is not running (it exited with status {rc})", file=sys.stderr)
        return rc or 1
    print(f"dashboard still serving at {url}; Ctrl+C stops it", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0


def cmd_serve(args) -> int:
    from ..dashboard import queries
    from .errors import fail
    db = Path(args.db)
    problem = port_problem(args.port)
    if problem:
        fail(problem)
        return 2
    url = f"http://{HOST}:{args.port}"
    state = "" if queries.database_exists(db) else " (no results database there yet: the pages say how to fill it)"
    print(f"dashboard: {url} serving {db}{state}; it starts no work. Ctrl+C stops it", flush=True)
    cmd, env = dashboard_cmd(db, args.port)
    os.chdir(PROJECT_ROOT)  # this process becomes the dashboard: a signal to it stops the dashboard, no orphan
    os.execve(cmd[0], cmd, env)
    return 1  # not reached


def add_serve_parser(sub) -> None:
    s = sub.add_parser("serve", help="serve the dashboard over a database (starts no work, writes nothing)")
    s.add_argument("--db", default=os.environ.get("XAI_DB", DEFAULT_DB),
                   help="results database (default: $XAI_DB, else %s)" % DEFAULT_DB)
    s.add_argument("--port", type=int, default=PORT, help="dashboard port (default %(default)s)")
    s.set_defaults(fn=cmd_serve)
