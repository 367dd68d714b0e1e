"""A run under way, as the pages show it: read from ``<db>.progress.json`` (never from the database,
which a running batch publishes only at commits), so reading it never waits for or blocks the writer.

:func:`live_view` is pure: the progress state and the clock in, the lines a page shows out.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..store.progress import read_progress, training_text
from .hints import fill_commands, status_command
from .safe import code, md


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


@dataclass(frozen=True)
class LiveView:
    running: bool            # a run is writing this database now
    headline: str            # one sentence: what the run is doing (Markdown; names escaped)
    details: list[str]       # stage, current dataset / model, failures (Markdown; names escaped)
    fraction: float          # jobs accounted for / planned (0..1)
    elapsed_s: float
    remaining_s: float | None  # estimate from the measured cost per job kind (None before the first job)
    publish_every: float = 0.0  # the run publishes finished units at most this often (s; 0: each as it ends)
    plan: tuple = ()            # the run's stages in order (dicts: name, dataset, kind, total, methods, metrics)
    stage_index: int | None = None  # the stage under way, an index into ``plan`` (None: unknown)
    resume: str | None = None   # an interrupted, failed or vanished run: the sentence with the command to continue


def live_view(state: dict | None, now: float | None = None) -> LiveView | None:
    """What to show of a progress state (:func:`engine.runner.progress.read_progress`); None when
    there is no run to speak of (no file, or a run that ended without a final status is not shown
    as running)."""
    if not state:
        return None
    now = time.time() if now is None else now
    total = max(int(state.get("jobs_total") or 0), 0)
    done, skipped, failed = (int(state.get(k) or 0) for k in ("jobs_done", "jobs_skipped", "jobs_failed"))
    counted = done + skipped + failed
    end = state.get("finished") or (now if state.get("alive") else state.get("updated") or now)
    elapsed = max(0.0, float(end) - float(state.get("started") or end))
    fraction = min(counted / total, 1.0) if total else 0.0
    running = bool(state.get("alive")) and state.get("status") == "running"
    remaining = remaining_estimate(state, now) if running else None
    if remaining is None and running and counted and total > counted:  # an older progress file: no costs
        remaining = elapsed * (total - counted) / counted
    name = code(state.get("experiment") or "?")
    every = float(state.get("publish_every") or 0.0)
    jobs = f"{counted:,} of {total:,} jobs" + (f" ({skipped:,} already in the database)" if skipped else "")
    if running:
        rest = (f"; about {_duration(remaining)} left (estimated from the measured time per job of each kind)"
                if remaining else "")
        headline = f"Run {name} is under way: {jobs}, {_duration(elapsed)} elapsed{rest}."
    elif state.get("status") == "running":
        headline = (f"Run {name} stopped without finishing after {jobs} (its process is gone); "
                    f"run the same command again to pick up where it stopped.")
    else:
        headline = f"Last run {name} {md(state.get('status'))}: {jobs} in {_duration(elapsed)}."
    details = []
    if running:
        details.append(f"Stage: {md(state.get('stage'))}" + (f" ({int(state.get('stage_done') or 0):,} of "
                                                          f"{int(state.get('stage_total') or 0):,} jobs)"
                                                          if state.get("stage_total") else ""))
        if state.get("dataset") or state.get("model"):
            details.append(f"Now: dataset {md(state.get('dataset') or '–')}, model {md(state.get('model') or '–')}")
        if isinstance(state.get("training"), dict):
            details.append(f"Training: {md(training_text(state['training']))}")
        if every:
            details.append(f"Results are published every {every:g} s: the tables can be up to {every:g} s behind "
                           f"the job counts above.")
    items = int(state.get("items_failed") or 0)
    details.append(f"Failures so far: {failed:,} jobs, {items:,} items" if (failed or items)
                   else "Failures so far: none")
    index = state.get("stage_index")
    return LiveView(running, headline, details, fraction, elapsed, remaining, every, tuple(state.get("plan") or ()),
                    index if isinstance(index, int) else None, resume_text(state, running, jobs))


def resume_text(state: dict, running: bool, jobs: str) -> str | None:
    """For a run that was interrupted (Ctrl-C, SIGTERM), failed, or whose process vanished: one sentence
    with the command that continues it (finished work is kept; the rerun skips it).  None otherwise."""
    status = state.get("status")
    if running or status not in ("interrupted", "failed", "running"):
        return None
    what = {"interrupted": "was interrupted", "failed": "failed"}.get(status, "stopped (its process is gone)")
    command = state.get("command")
    how = (f"continue it with {code(command)}" if command
           else "continue it by running the command that started it again")
    return (f"The last run {code(state.get('experiment') or '?')} {what} after {jobs}: {how}. Finished work is "
            f"kept in the database; the run picks up where it stopped.")


# what a page waits for -> whether a planned stage computes it
WILL_COMPUTE = {
    "baselines": lambda s: s["kind"] in ("localisation", "faithfulness")
    and any(m.startswith("baseline_") for m in s.get("methods", ())),
    "scores": lambda s: s["kind"] in ("localisation", "faithfulness"),
    "faithfulness": lambda s: s["kind"] == "faithfulness",
    "sanity": lambda s: s["kind"] == "sanity",
    "depth": lambda s: s["kind"] == "localisation" and any("layer=" in m for m in s.get("methods", ())),
    "jobs": lambda s: True,
}


def pending(view: LiveView | None, what: str, dataset: str | None = None) -> str | None:
    """While a run is live and a stage still to finish (the current one or a later one) will compute
    ``what`` (a key of :data:`WILL_COMPUTE`) for ``dataset`` (its name; None: any): the sentence a page shows
    instead of its empty state ("not computed yet: the run will do it (stage k of n: <stage>)").  None when
    no live run will compute it (the page then says what it always says)."""
    if view is None or not view.running or not view.plan:
        return None
    start = view.stage_index or 0
    for k, stage in enumerate(view.plan[start:], start):
        if stage.get("total", 0) and (dataset is None or stage.get("dataset") == dataset) \
                and WILL_COMPUTE[what](stage):
            return (f"Not computed yet: the run under way will do it (stage {k + 1} of {len(view.plan)}: "
                    f"{md(stage['name'])}); this page refreshes itself when it lands.")
    return None


# seconds per job-image of each kind relative to a localisation job-image, measured on a recorded run (the
# quick demo, 2026-12-06, shared 2-core CPU: tests/recorded_run.json, bench/progress_estimate.py); used only for
# a kind with no finished job yet, scaled by the kinds measured so far
COST_PRIOR = {"data": 0.0, "train": 4.0, "predict": 0.75, "localisation": 1.0, "faithfulness": 12.0, "sanity": 57.0}


def job_costs(costs: dict) -> dict[str, float]:
    """Seconds per job-image of each kind: measured (``costs``: kind -> [seconds, job-images]) where a job of
    that kind finished, else :data:`COST_PRIOR` times the median ratio measured / prior of the measured kinds."""
    measured = {k: float(c[0]) / int(c[1]) for k, c in (costs or {}).items() if int(c[1]) > 0 and ":" not in k}
    ratios = sorted(v / COST_PRIOR[k] for k, v in measured.items() if COST_PRIOR.get(k))
    scale = ratios[len(ratios) // 2] if ratios else None
    out = dict(measured)
    for k, prior in COST_PRIOR.items():
        if k not in out and scale is not None:
            out[k] = prior * scale
    return out


def remaining_estimate(state: dict, now: float) -> float | None:
    """Seconds left: the jobs left in the stage under way and in every later stage of the plan, each at the
    measured cost per image of its kind (:func:`job_costs`; for a stage of methods, the mean of each of its
    methods' measured cost, ``kind:method``) times the images a job of that stage works on, less the time
    the job under way has run already.  None without a plan, a known stage or a finished job."""
    plan, index = state.get("plan") or [], state.get("stage_index")
    per = job_costs(state.get("costs") or {})
    if not plan or not isinstance(index, int) or index >= len(plan) or not per:
        return None

    methods = {k: float(c[0]) / int(c[1]) for k, c in (state.get("costs") or {}).items() if ":" in k and int(c[1])}

    def cost(stage):  # per job: the mean over the stage's methods of each one's measured cost (else the kind's)
        kind = per.get(stage["kind"], max(per.values()))
        names = {m.split(" (")[0] for m in stage.get("methods") or ()}
        each = [methods.get(f"{stage['kind']}:{m}", kind) for m in sorted(names)] or [kind]
        return sum(each) / len(each) * int(stage.get("images") or 1)
    current = cost(plan[index])
    left = max(int(state.get("stage_total") or 0) - int(state.get("stage_done") or 0), 0)
    rest = left * current + sum(int(s.get("total") or 0) * cost(s) for s in plan[index + 1:])
    if left:
        rest -= min(max(now - float(state.get("mark") or now), 0.0), current)
    return max(rest, 0.0)


def live_run(db: str | Path, now: float | None = None) -> LiveView | None:
    return live_view(read_progress(db), now)


def database_message(db: str | Path, exists: bool, has_scores: bool, view: LiveView | None) -> str | None:
    """The one sentence (with the command to run; Markdown, the path in code spans) a page shows for a
    missing, empty or first-time-written database; None when the database holds scores."""
    if view is not None and view.running:
        if not exists:
            return (f"A run is writing {code(db)} for the first time: the first results appear here when its first "
                    f"unit is committed (this page refreshes itself). Watch it in the terminal that runs it, or "
                    f"{code(status_command(db))}.")
        if not has_scores:
            when = (f"within about {view.publish_every:g} s of each unit finishing" if view.publish_every
                    else "as each unit finishes")
            return (f"A run is under way and has not committed any scores yet: they appear here {when} "
                    f"(this page refreshes itself).")
        return None
    if not exists:
        return f"There is no results database at {code(db)} yet. A run creates it: {fill_commands(db)}."
    if not has_scores:
        return f"The database {code(db)} holds no scores yet. A run adds them: {fill_commands(db)}."
    return None
