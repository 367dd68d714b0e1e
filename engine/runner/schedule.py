"""``python -m engine schedule``: a crontab line or systemd units that run an experiment.

The scheduled command is the same incremental ``run``: a nightly run with nothing new finishes in
seconds (every job key is already in the database); a new checkpoint, dataset version or method
parameter makes exactly the affected jobs run.  ``--wait`` lets a run that starts while the previous
one still writes wait for the lock instead of failing.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .. import PROJECT_ROOT

EVERY = {"daily": ("0 2 * * *", "*-*-* 02:00:00"), "hourly": ("0 * * * *", "hourly")}


def _command(experiment: Path, db: Path) -> str:
    return " ".join(shlex.quote(str(p)) for p in (sys.executable, "-m", "engine", "run", experiment.resolve(),
                                                 "--db", db.resolve(), "--wait", "3600", "--no-progress"))


def schedule_text(experiment: Path, db: Path, every: str = "daily", systemd: bool = False) -> str:
    cron, calendar = EVERY.get(every, (every, None))
    if len(cron.split()) != 5:
        raise SystemExit(f"--every {every!r}: use daily, hourly or a 5-field cron expression")
    cmd = _command(experiment, db)
    if not systemd:
        return (f"# crontab -e, then add (runs {every}; output beside the database's logs/ files):\n"
                f"{cron} cd {shlex.quote(str(PROJECT_ROOT))} && {cmd} >> "
                f"{shlex.quote(str(db.resolve().parent / 'logs' / 'cron.log'))} 2>&1")
    if calendar is None:
        raise SystemExit("--systemd needs --every daily or hourly (or write OnCalendar= yourself)")
    name = f"xai-{experiment.stem}"
    return (f"# ~/.config/systemd/user/{name}.service\n[Unit]\nDescription=XAI experiment {experiment.name}\n\n"
            f"[Service]\nType=oneshot\nWorkingDirectory={PROJECT_ROOT}\nExecStart={cmd}\n\n"
            f"# ~/.config/systemd/user/{name}.timer\n[Unit]\nDescription=Run {name} {every}\n\n"
            f"[Timer]\nOnCalendar={calendar}\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n\n"
            f"# then: systemctl --user daemon-reload && systemctl --user enable --now {name}.timer")
