"""``python -m engine verify --db DB [--repair]``: check every file of a results database against the size and
SHA-256 recorded when it was written; list the damaged ones and the jobs that wrote them (exit 1), or, with
``--repair``, drop them and those jobs so the next run recomputes them (engine/store/verify.py)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..store.read import DEFAULT_DB


def cmd_verify(args) -> int:
    from ..store import DatabaseRefused, WriterBusy
    from ..store.verify import repair, verify
    db = Path(args.db)
    if not db.is_file():
        print(f"error: {db}: no results database here", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        verdict = verify(db)
    except DatabaseRefused as exc:   # the catalog itself: nothing to repair file by file
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    seconds = time.monotonic() - t0
    unchecked = f"; {verdict.unchecked} written before checksums were recorded (size checked only)" \
        if verdict.unchecked else ""
    print(f"{db}: {verdict.files} files, {verdict.bytes / 1e6:.1f} MB checked in {seconds:.2f} s, "
          f"{len(verdict.damaged)} damaged{unchecked}")
    for d in verdict.damaged:
        jobs = ", ".join(d.jobs[:10]) + (f", ... ({len(d.jobs)} jobs)" if len(d.jobs) > 10 else "")
        print(f"damaged: {d.file} ({d.table}, {d.rows} rows) {d.why}; written by: {jobs or 'no job (bookkeeping)'}")
    if not verdict.damaged:
        return 0
    if not args.repair:
        print(f"repair: `python -m engine verify --db {db} --repair` drops these files and the jobs that wrote "
              f"them; the next run of the experiment recomputes those jobs")
        return 1
    try:
        dropped = repair(db, lock_timeout=args.wait)
    except (DatabaseRefused, WriterBusy) as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 3 if isinstance(exc, WriterBusy) else 2
    jobs = {k for d in dropped for k in d.jobs}
    print(f"repaired: dropped {len(dropped)} damaged file(s) and {len(jobs)} job(s); run the experiment again to "
          f"recompute them")
    return 0


def add_verify_parser(sub) -> None:
    v = sub.add_parser("verify", help="check every file of the database against its recorded checksum")
    v.add_argument("--db", default=DEFAULT_DB, help="results database (default %(default)s)")
    v.add_argument("--repair", action="store_true", help="drop the damaged files and the jobs that wrote them "
                   "(the next run recomputes them)")
    v.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="with --repair: wait this long for a run that holds the database (default: refuse)")
    v.set_defaults(fn=cmd_verify)
