"""Insertion/deletion throughput: ours (batched) vs RISE's per-image ``CausalMetric.single_run`` loop.

    .venv/bin/python bench/faithfulness_throughput.py [--rise PATH --deps DIR] [--images 64] [--n-steps 224]

Same inputs on both sides: ViT-S/16 at 224 (timm ``vit_small_patch16_224``, random weights, seeded,
eval, 10 classes), ``--images`` random normalised images, tie-free maps at 224 x 224 (a random permutation
of 0 ... HW-1 divided by HW: exact in float32, and RISE orders pixels by a non-stable ``argsort``), the
explained class = the argmax on the image (RISE's choice, passed to ours as ``targets``).

* RISE: ``CausalMetric(softmax(model), mode, step, substrate)`` with step = 224*224 / n_steps pixels
  ('ins': ``gkern(11, 5)`` blur, 'del': ``torch.zeros_like``), ``single_run`` image by image + its ``auc``.
  Run-time glue as in bench/metrics_parity.py (whose ``on_path`` is reused): ``Tensor.cuda`` a no-op,
  ``evaluation.HW``/``n_classes`` set, ``scipy.ndimage.filters`` aliased.
* ours: ``METRICS["insertion_auc"]`` / ``["deletion_auc"]`` with the same n_steps, batch_size 64.
* plain forward: (n_steps + 1) x images forwards of the same images in batches of 64 (what any
  implementation must at least pay per metric); ours per metric is reported relative to it.

Gates (reported, exit status 1 if the AUCs disagree): max |d AUC| < 1e-4.  Goals (reported, not gated):
RISE / ours >= 3, ours per metric / plain <= 1.3.  One timed run each (after a warm-up forward), so the
numbers are as noisy as the machine; this is a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from metrics_parity import on_path  # noqa: E402

from engine.metrics import METRICS  # noqa: E402

HW_SIDE, N_CLASSES, BATCH = 224, 10, 64
AUC_TOL, GOAL_SPEEDUP, GOAL_PLAIN = 1e-4, 3.0, 1.3


def make_inputs(n_images: int, seed: int):
    import timm
    torch.manual_seed(seed)
    model = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=N_CLASSES).eval()
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n_images, 3, HW_SIDE, HW_SIDE, generator=g)
    n_pix = HW_SIDE * HW_SIDE
    maps = torch.stack([torch.randperm(n_pix, generator=g) for _ in range(n_images)]).float() / n_pix
    maps = maps.view(n_images, HW_SIDE, HW_SIDE)
    with torch.no_grad():
        targets = model(images).argmax(1)
    return model, images, maps, targets


def load_rise(path: str, deps: str | None):
    sys.modules.setdefault("scipy.ndimage.filters", importlib.import_module("scipy.ndimage"))  # gone in SciPy 2
    saved = sys.modules.pop("utils", None)  # RISE does `from utils import *` (its own utils.py)
    try:
        with on_path(path, deps):
            ev = importlib.import_module("evaluation")
    finally:
        if saved is not None:
            sys.modules["utils"] = saved
    ev.HW, ev.n_classes = HW_SIDE * HW_SIDE, N_CLASSES
    return ev


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def run_rise(ev, model, images, maps, step):
    smodel = nn.Sequential(model, nn.Softmax(dim=1)).eval()  # RISE wraps the model in a softmax
    kern, klen = ev.gkern(11, 5), 11
    blur = lambda x: nn.functional.conv2d(x, kern, padding=klen // 2)  # noqa: E731  (RISE's notebook)
    cuda = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self  # RISE calls .cuda(): no-op on CPU
    out = {}
    try:
        for mode, name, sub in (("ins", "insertion_auc", blur), ("del", "deletion_auc", torch.zeros_like)):
            cm = ev.CausalMetric(smodel, mode, step, sub)

            def loop():
                with torch.no_grad():
                    return np.array([ev.auc(cm.single_run(images[i:i + 1].clone(), maps[i].numpy()))
                                     for i in range(len(images))])
            out[name] = timed(loop)
    finally:
        torch.Tensor.cuda = cuda
    return out


def run_ours(model, images, maps, targets, n_steps):
    return {name: timed(lambda name=name: METRICS[name](maps, model=model, images=images, targets=targets,
                                                          n_steps=n_steps, batch_size=BATCH))
            for name in ("insertion_auc", "deletion_auc")}


@torch.no_grad()
def plain_forward(model, images, n_steps):
    """(n_steps + 1) x B forwards of the images, in batches of BATCH (images cycled to fill a batch)."""
    total, b = (n_steps + 1) * len(images), len(images)
    for lo in range(0, total, BATCH):
        idx = torch.arange(lo, min(lo + BATCH, total)) % b
        model(images[idx])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rise", help="checkout of eclique/RISE (skipped if not given)")
    p.add_argument("--deps", help="directory with RISE's extra dependencies (put on sys.path)")
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--n-steps", type=int, default=224, help="224 = RISE's default step of 224 px")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n_pix, k = HW_SIDE * HW_SIDE, args.n_steps
    model, images, maps, targets = make_inputs(args.images, args.seed)
    with torch.no_grad():  # warm-up (batch 64 and batch 1)
        model(images[torch.arange(BATCH) % len(images)])
        model(images[:1])

    t_plain, _ = timed(lambda: plain_forward(model, images, k))
    ours = run_ours(model, images, maps, targets, k)
    t_ours = sum(t for t, _ in ours.values())

    rise, reason = None, None
    if not args.rise:
        reason = "--rise not given"
    elif n_pix % k:
        reason = f"n_steps={k} does not divide {n_pix} (RISE's step would be partial)"
    else:
        try:
            ev = load_rise(args.rise, args.deps)
        except ImportError as e:
            reason = f"RISE not importable: {e}"
        else:
            rise = run_rise(ev, model, images, maps, n_pix // k)

    b = args.images
    print(f"ViT-S/16 224, {b} images, n_steps={k}" + (f" (RISE step={n_pix // k} px)" if not n_pix % k else "")
          + f", batch {BATCH}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"load avg {os.getloadavg()[0]:.2f}\n")
    print("| run | forwards | seconds | ms / forward |")
    print("| --- | ---: | ---: | ---: |")
    n_fwd = (k + 1) * b

    def row(name, t, n):
        print(f"| {name} | {n} | {t:.2f} | {1e3 * t / n:.2f} |")
    row(f"plain forward ((n_steps+1) x {b}, batches of {BATCH})", t_plain, n_fwd)
    for name, (t, _) in ours.items():
        row(f"ours {name}", t, n_fwd)
    row("ours ins + del", t_ours, 2 * n_fwd)
    if rise:
        for name, (t, _) in rise.items():
            row(f"RISE {name} (single_run per image)", t, n_fwd + b)
        t_rise = sum(t for t, _ in rise.values())
        row("RISE ins + del", t_rise, 2 * (n_fwd + b))

    print("\n| summary | value | goal |")
    print("| --- | ---: | --- |")
    rel = (t_ours / 2) / t_plain
    bad = False
    if rise:
        d = max(float(np.max(np.abs(ours[n][1] - rise[n][1]))) for n in ours)
        bad = not d < AUC_TOL
        sp = t_rise / t_ours
        verdict = "ok" if sp >= GOAL_SPEEDUP else "MISSED"
        print(f"| RISE / ours (ins + del) | {sp:.2f}x | >= {GOAL_SPEEDUP:g}x {verdict} |")
        print(f"| max abs d AUC (ins, del) | {d:.2e} | < {AUC_TOL:g} {'FAIL' if bad else 'ok'} |")
    verdict = "ok" if rel <= GOAL_PLAIN else "MISSED"
    print(f"| ours per metric / plain forward | {rel:.2f}x | <= {GOAL_PLAIN:g}x {verdict} |")
    if not rise:
        print(f"\nRISE skipped: {reason}")
    else:
        print("\nRISE forwards include its one extra forward per image (to pick the class). Glue: Tensor.cuda "
              f"no-op, evaluation.HW = {n_pix}, n_classes = {N_CLASSES}.")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
