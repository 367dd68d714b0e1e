"""The shortcut check's cost on the default demo's datasets (issue 23).

Generates the four datasets of ``data/experiments/demo.toml`` into ``--work`` (once; the generators re-use
what is there), reads their records, and runs :func:`engine.data.shortcut.dataset_shortcut` on each --
unless ``--no-check`` (the same process without the check: time the pair as whole processes and take the
difference).  Prints each dataset's line and the check's own CPU seconds (``time.process_time``).

    python bench/shortcut_cost.py --work /tmp/shortcut_demo [--no-check]
"""
from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

from engine import PROJECT_ROOT
from engine.data import load_records
from engine.data.shortcut import dataset_shortcut
from engine.runner.datasets import spec_for
from engine.runner.experiment import parse_experiment


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the generated demo datasets")
    ap.add_argument("--no-check", action="store_true", help="read the records only (the baseline)")
    args = ap.parse_args()
    path = PROJECT_ROOT / "data" / "experiments" / "demo.toml"
    cfg = tomllib.loads(path.read_text(encoding="utf-8"))
    exp = parse_experiment(cfg, path.parent)
    total = 0.0
    for block in cfg["datasets"]:
        spec = spec_for(dict(block), exp, args.work, exp.seed, False)
        records, classes = load_records(spec)
        if args.no_check:
            continue
        t0 = time.process_time()
        res = dataset_shortcut(spec, records, classes)
        cpu = time.process_time() - t0
        total += cpu
        print(f"{block['name']}: {len(records)} images, {cpu:.2f} s CPU: {res.line()}")
    print(f"shortcut check, all datasets: {total:.2f} s CPU")


if __name__ == "__main__":
    main()
