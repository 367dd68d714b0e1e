"""Peak memory per image of the Captum methods under the memory bound (``memory_budget``), CPU.

    .venv/bin/python bench/captum_memory.py [--model vit_demo] [--batch 16] [--budgets 0,1024,256]

For each method (``integrated_gradients`` 16 steps, ``smoothgrad`` 16 samples, ``saliency``,
``occlusion``) and each budget in MiB (``0`` = unbounded: every row of the batch in one pass, i.e.
Captum without ``internal_batch_size``), a fresh subprocess builds the model (random weights), explains
``--batch`` random images through ``run_methods`` and samples its resident set every 2 ms (the kernel's
high-water mark is updated lazily).  Reported: peak resident memory above the state after one warm-up
forward, per image; seconds; the estimated activation bytes per model input
(:func:`engine.explain.captum_methods.activation_bytes`) and the model inputs per pass the budget allows.
A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SNIPPET = r"""
import json, os, sys, threading, time, torch
sys.path.insert(0, {root!r})
from engine.explain import run_methods
from engine.explain.captum_methods import activation_bytes, rows_per_pass
from engine.models import create_model
torch.set_num_threads({threads})
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page
torch.manual_seed(0)
model, info = create_model({model!r}, 3)
model.eval()
x = torch.randn({batch}, 3, info.input_size, info.input_size, generator=torch.Generator().manual_seed(1))
budget = {budget} * 2 ** 20 if {budget} else 1 << 50
row = activation_bytes(model, x)
with torch.no_grad():
    model(x[:1])
base, peak, done = rss(), [0], [False]
def sample():
    while not done[0]:
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)
t = threading.Thread(target=sample, daemon=True)
t.start()
t0 = time.perf_counter()
run_methods(model, x, [{method!r}], params={{{method!r}: {params!r}}}, memory_budget=budget)
sec = time.perf_counter() - t0
done[0] = True
t.join()
print(json.dumps({{"peak_mib_per_image": (peak[0] - base) / 2 ** 20 / {batch}, "seconds": sec,
                  "row_mib": row / 2 ** 20, "rows_per_pass": rows_per_pass(model, x, budget)}}))
"""

METHODS = [("integrated_gradients", {"n_steps": 16}), ("smoothgrad", {"nt_samples": 16}), ("saliency", {}),
           ("occlusion", {})]


def measure(model: str, method: str, params: dict, batch: int, budget_mib: int, threads: int) -> dict:
    code = SNIPPET.format(root=str(ROOT), model=model, method=method, params=params, batch=batch, budget=budget_mib,
                          threads=threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="vit_demo")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--budgets", default="0,1024,256", help="MiB, comma-separated; 0 = unbounded")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    budgets = [int(b) for b in a.budgets.split(",")]
    print(f"### Captum methods under the memory bound: {a.model}, batch {a.batch}, CPU, {a.threads} thread(s), "
          f"load avg {os.getloadavg()[0]:.1f}\n")
    print("| method | budget | inputs per pass | activations per input (MiB) | peak MiB per image | seconds |")
    print("|---|---|---|---|---|---|")
    for method, params in METHODS:
        for b in budgets:
            r = measure(a.model, method, params, a.batch, b, a.threads)
            label = "unbounded" if b == 0 else f"{b} MiB"
            rows = "all" if b == 0 else str(r["rows_per_pass"])
            print(f"| {method} {json.dumps(params) if params else ''} | {label} | {rows} | {r['row_mib']:.2f} | "
                  f"{r['peak_mib_per_image']:.1f} | {r['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
