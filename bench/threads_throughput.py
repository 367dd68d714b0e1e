"""Evaluation throughput against torch's intra-op threads on CPU (the ``--threads`` default).

    .venv/bin/python bench/threads_throughput.py [--threads 1,2] [--reps 3] [--batch 32]

The work of one evaluate chunk of the demo: the demo ViT (``vit_demo``, 64 px, random weights), a batch
of ``--batch`` random images, the six trace methods through ``run_methods`` and insertion + deletion
(8 steps) on the ``attention`` maps.  Each thread count runs in a fresh subprocess
(``torch.set_num_threads``); median of ``--reps`` timed runs after a warm-up.  Also printed: the
default the runner would pick here (:func:`engine.common.precision.default_threads`, one worker),
the cores of this process's affinity and the load average, which decides the outcome on a shared
machine.  A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SNIPPET = r"""
import json, statistics, sys, time, torch
sys.path.insert(0, {root!r})
torch.set_num_threads({threads})
from engine.explain import run_methods, upsample_maps
from engine.metrics import METRICS
from engine.models import create_model
torch.manual_seed(0)
model, info = create_model("vit_demo", 3)
model.eval()
x = torch.randn({batch}, 3, info.input_size, info.input_size, generator=torch.Generator().manual_seed(1))
SIX = ["attention", "rollout", "grad_rollout", "chefer_gae", "gradcam_attn", "gradcam"]
def work():
    maps, _, t = run_methods(model, x, SIX)
    up = upsample_maps(maps["attention"], (info.input_size, info.input_size))
    for m in ("insertion_auc", "deletion_auc"):
        METRICS[m](up, model=model, images=x, targets=t, n_steps=8)
work()
times = []
for _ in range({reps}):
    t0 = time.perf_counter()
    work()
    times.append(time.perf_counter() - t0)
print(json.dumps({{"seconds": statistics.median(times)}}))
"""


def main(argv=None) -> int:
    from engine.common.precision import available_cores, default_threads
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    a = p.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    load0 = os.getloadavg()[0]
    rows = []
    for n in [int(t) for t in a.threads.split(",")]:
        code = SNIPPET.format(root=str(ROOT), threads=n, batch=a.batch, reps=a.reps)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        rows.append((n, json.loads(out.stdout.strip().splitlines()[-1])["seconds"]))
    print(f"### Evaluation throughput vs torch threads: vit_demo, batch {a.batch}, six trace methods + insertion/"
          f"deletion (8 steps); {available_cores()} cores in this process's affinity, default --threads "
          f"{default_threads(1)} (one worker, OMP_NUM_THREADS unset), load avg {load0:.1f} -> "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| threads | seconds per batch (median) | images/s | vs 1 thread |")
    print("|---|---|---|---|")
    one = rows[0][1]
    for n, sec in rows:
        print(f"| {n} | {sec:.2f} | {a.batch / sec:.1f} | {one / sec:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
