"""Explanation throughput on CPU: images/s per method beside a bare forward + backward.

    .venv/bin/python bench/explain_throughput.py [--model vit_small_patch16_224] [--batch 32] [--reps 3]
                                                 [--captum-images 4] [--memory] [--write docs/benchmarks.md]

* ``bare fwd+bwd``: the timm model with its fused attention, logits of the predicted class summed and
  back-propagated to the input-free graph (what any gradient method must at least pay).
* each trace method alone, the six trace methods together (one shared trace), and the seven with
  ``chefer_lrp``; Captum methods on ``--captum-images`` images (they cost many passes per image).
* ``--memory``: peak resident memory per image of ViT-B/16, batch 32, in a fresh subprocess for each of
  (six trace methods, ``attention`` alone with only its block kept).

Random weights (the cost does not depend on them).  Numbers are medians over ``--reps`` runs after a
warm-up run.  This is a benchmark, not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import logging
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.explain import METHODS, run_methods  # noqa: E402

log = logging.getLogger("bench")
SIX = ["attention", "rollout", "grad_rollout", "chefer_gae", "gradcam_attn", "gradcam"]


def timed(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bare(model, x):
    logits = model(x)
    target = logits.argmax(1)
    torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)


def throughput(model_name: str, batch: int, reps: int, captum_images: int) -> list[tuple[str, int, float]]:
    import timm
    torch.manual_seed(0)
    model = timm.create_model(model_name, pretrained=False, num_classes=10).eval()
    size = model.pretrained_cfg["input_size"][-1]
    x = torch.randn(batch, 3, size, size)
    rows = []
    xg = x.clone().requires_grad_(True)
    rows.append(("bare fwd+bwd (fused attention)", batch, timed(lambda: bare(model, xg), reps)))
    for m in SIX + ["chefer_lrp"]:
        rows.append((m, batch, timed(lambda m=m: run_methods(model, x, [m]), reps)))
    rows.append(("six trace methods together", batch, timed(lambda: run_methods(model, x, SIX), reps)))
    rows.append(("six + chefer_lrp together", batch, timed(lambda: run_methods(model, x, SIX + ["chefer_lrp"]), reps)))
    xc = x[:captum_images]
    for m in sorted(k for k, v in METHODS.items() if v.kind == "model" and not k.startswith("baseline_")):
        rows.append((m, captum_images, timed(lambda m=m: run_methods(model, xc, [m]), 1)))
    return rows


# The kernel's high-water mark (ru_maxrss / VmHWM) is updated lazily, so a thread samples the
# resident set every 2 ms instead.
MEMORY_SNIPPET = """
import os, sys, threading, time, timm, torch
sys.path.insert(0, {root!r})
from engine.explain import run_methods
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page
peak, done = [0], [False]
def sample():
    while not done[0]:
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)
torch.manual_seed(0)
m = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=10).eval()
x = torch.randn({batch}, 3, 224, 224)
with torch.no_grad():
    m(x[:1])
base = rss()
t = threading.Thread(target=sample, daemon=True)
t.start()
run_methods(m, x, {methods!r})
done[0] = True
t.join()
print((peak[0] - base) / 2 ** 20 / {batch})
"""


def memory_per_image(methods: list[str], batch: int = 32) -> float:
    code = MEMORY_SNIPPET.format(root=str(ROOT), batch=batch, methods=methods)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vit_small_patch16_224")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--captum-images", type=int, default=4)
    p.add_argument("--memory", action="store_true")
    p.add_argument("--write", default=None, help="append the tables to this markdown file")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = throughput(a.model, a.batch, a.reps, a.captum_images)
    base = rows[0][2] / rows[0][1]
    lines = [f"### Explanation throughput: {a.model}, batch {a.batch}, CPU ({torch.get_num_threads()} threads, "
             f"{platform.processor() or platform.machine()}, torch {torch.__version__})", "",
             "| method | images | seconds | images/s | × bare fwd+bwd per image |", "|---|---|---|---|---|"]
    for name, n, sec in rows:
        lines.append(f"| {name} | {n} | {sec:.3f} | {n / sec:.1f} | {sec / n / base:.2f} |")
    if a.memory:
        lines += ["", "### Peak memory per image, ViT-B/16 at 224, batch 32", "",
                  "| methods | MiB per image |", "|---|---|"]
        for label, ms in (("six trace methods (all blocks kept)", SIX), ("`attention` only (last block kept)",
                                                                        ["attention"]),
                          ("six + `chefer_lrp`", SIX + ["chefer_lrp"])):
            lines.append(f"| {label} | {memory_per_image(ms):.1f} |")
    text = "\n".join(lines)
    print(text)
    if a.write:
        with open(a.write, "a") as fh:
            fh.write("\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
