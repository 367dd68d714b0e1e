"""Verdict on a demo database for bench/gpu_check.sh: 0 failed jobs and items, a test accuracy for every model.

    python3 bench/gpu_demo_check.py DB SECONDS COMMAND OUT_JSON

Prints PASS or FAIL with the counts and writes them as JSON.  Exit status 1 on FAIL.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import duckdb


def verdict(db: Path) -> dict:
    if not db.exists():
        return {"pass": False, "reason": f"{db}: no database", "failed_jobs": -1, "failed_items": -1,
                "models": 0, "with_accuracy": 0}
    with duckdb.connect(str(db), read_only=True) as con:
        run = con.execute("SELECT status, counts FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
        counts = json.loads(run[1]) if run and run[1] else {}
        models = con.execute("SELECT model_id, test_accuracy, precision FROM models").fetchall()
        n_fail_rows = con.execute("SELECT count(*) FROM failures").fetchone()[0]
        n_pred = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    acc = [m for m in models if m[1] is not None and not math.isnan(m[1])]
    out = {"status": run[0] if run else None, "failed_jobs": counts.get("failed_jobs", -1),
           "failed_items": counts.get("failed_items", -1), "failure_rows": n_fail_rows, "models": len(models),
           "with_accuracy": len(acc), "predictions": n_pred,
           "precision": ",".join(sorted({str(m[2]) for m in models})),
           "accuracies": {m[0]: m[1] for m in models}}
    out["pass"] = (out["failed_jobs"] == 0 and out["failed_items"] == 0 and len(models) > 0
                   and len(acc) == len(models) and n_pred > 0)
    return out


def main(argv=None) -> int:
    db, seconds, command, out_json = (sys.argv[1:] if argv is None else argv)
    v = {**verdict(Path(db)), "seconds": float(seconds), "command": command}
    Path(out_json).write_text(json.dumps(v, indent=1))
    print(("PASS" if v["pass"] else "FAIL") + f": {v['failed_jobs']} failed jobs, {v['failed_items']} failed items, "
          f"test accuracy for {v['with_accuracy']}/{v['models']} models, {v.get('predictions', 0)} predictions, "
          f"{v['seconds']:.0f} s")
    for model_id, acc in (v.get("accuracies") or {}).items():
        print(f"  {model_id}: test accuracy {acc}")
    return 0 if v["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
