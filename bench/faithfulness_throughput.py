"""Insertion/deletion throughput: ours (batched) vs RISE's per-image ``CausalMetric.single_run`` loop.

    .venv/bin/python bench/faithfulness_throughput.py [--rise PATH --deps DIR] [--images 64] [--n-steps 224]
                                                      [--device cpu|cuda] [--precision fp32|bf16] [--agreement]
                                                      [--model NAME --img-size N] [--json PATH]

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

* ``--device`` / ``--precision``: ours (and the plain forwards) on that device, ``bf16`` = autocast
  forwards (the substrate mixing is on the device either way); CUDA timings are synchronised.
  RISE runs in float32 (as shipped), on the same device.
* ``--agreement``: ours is also run at the other precision; reported: both timings and the max |d AUC|
  between bf16 and fp32 per metric (the bf16 tolerance).
* ``--json``: the figures as JSON (for bench/gpu_table.py).

Gates (reported, exit status 1 if the AUCs disagree): max |d AUC| < 1e-4 against RISE at fp32.
Goals (reported, not gated): RISE / ours >= 3, ours per metric / plain <= 1.3.  One timed run each (after a
warm-up forward), so the numbers are as noisy as the machine; this is a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import importlib
import json
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

from engine.common.precision import autocast  # noqa: E402
from engine.metrics import METRICS  # noqa: E402

HW_SIDE, N_CLASSES, BATCH = 224, 10, 64
AUC_TOL, GOAL_SPEEDUP, GOAL_PLAIN = 1e-4, 3.0, 1.3


def make_inputs(n_images: int, seed: int, model_name: str = "vit_small_patch16_224", side: int = HW_SIDE,
                device: str = "cpu"):
    import timm
    torch.manual_seed(seed)
    kw = {} if side == HW_SIDE else {"img_size": side}
    model = timm.create_model(model_name, pretrained=False, num_classes=N_CLASSES, **kw).eval().to(device)
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n_images, 3, side, side, generator=g)
    n_pix = side * side
    maps = torch.stack([torch.randperm(n_pix, generator=g) for _ in range(n_images)]).float() / n_pix
    maps = maps.view(n_images, side, side)
    images = images.to(device)
    with torch.no_grad():
        targets = model(images).argmax(1)
    return model, images, maps, targets


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def load_rise(path: str, deps: str | None, n_pix: int = HW_SIDE * HW_SIDE):
    sys.modules.setdefault("scipy.ndimage.filters", importlib.import_module("scipy.ndimage"))  # gone in SciPy 2
    saved = sys.modules.pop("utils", None)  # RISE does `from utils import *` (its own utils.py)
    try:
        with on_path(path, deps):
            ev = importlib.import_module("evaluation")
    finally:
        if saved is not None:
            sys.modules["utils"] = saved
    ev.HW, ev.n_classes = n_pix, N_CLASSES
    return ev


def timed(fn, device="cpu"):
    _sync(device)
    t = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t, out


def run_rise(ev, model, images, maps, step):
    smodel = nn.Sequential(model, nn.Softmax(dim=1)).eval()  # RISE wraps the model in a softmax
    kern, klen = ev.gkern(11, 5).to(images.device), 11
    blur = lambda x: nn.functional.conv2d(x, kern, padding=klen // 2)  # noqa: E731  (RISE's notebook)
    cuda = torch.Tensor.cuda
    if images.device.type == "cpu":
        torch.Tensor.cuda = lambda self, *a, **k: self  # RISE calls .cuda(): no-op on CPU
    out = {}
    try:
        for mode, name, sub in (("ins", "insertion_auc", blur), ("del", "deletion_auc", torch.zeros_like)):
            cm = ev.CausalMetric(smodel, mode, step, sub)

            def loop():
                with torch.no_grad():
                    return np.array([ev.auc(cm.single_run(images[i:i + 1].clone(), maps[i].numpy()))
                                     for i in range(len(images))])
            out[name] = timed(loop, images.device)
    finally:
        torch.Tensor.cuda = cuda
    return out


def run_ours(model, images, maps, targets, n_steps, precision="fp32", batch=BATCH):
    maps = maps.to(images.device)
    return {name: timed(lambda name=name: METRICS[name](maps, model=model, images=images, targets=targets,
                                                          n_steps=n_steps, batch_size=batch, precision=precision),
                        images.device)
            for name in ("insertion_auc", "deletion_auc")}


@torch.no_grad()
def plain_forward(model, images, n_steps, precision="fp32", batch=BATCH):
    """(n_steps + 1) x B forwards of the images, in batches of ``batch`` (images cycled to fill a batch)."""
    total, b = (n_steps + 1) * len(images), len(images)
    for lo in range(0, total, batch):
        idx = torch.arange(lo, min(lo + batch, total), device=images.device) % b
        with autocast(images.device, precision):
            model(images[idx])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rise", help="checkout of eclique/RISE (skipped if not given)")
    p.add_argument("--deps", help="directory with RISE's extra dependencies (put on sys.path)")
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--n-steps", type=int, default=224, help="224 = RISE's default step of 224 px")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--agreement", action="store_true", help="also run ours at the other precision: dAUC")
    p.add_argument("--model", default="vit_small_patch16_224")
    p.add_argument("--img-size", type=int, default=HW_SIDE)
    p.add_argument("--json", default=None, help="write the figures here as JSON")
    p.add_argument("--batch", default=str(BATCH), help="model inputs per forward, or 'auto' (the metrics' "
                   "batch_size=None: 64 on CPU, from free memory on CUDA)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    side, dev = args.img_size, args.device
    n_pix, k = side * side, args.n_steps
    model, images, maps, targets = make_inputs(args.images, args.seed, args.model, side, dev)
    with torch.no_grad():  # warm-up (batch 64 and batch 1)
        for prec in ("fp32", "bf16") if args.agreement else (args.precision,):
            with autocast(dev, prec):
                model(images[torch.arange(BATCH, device=dev) % len(images)])
                model(images[:1])

    if args.batch == "auto":
        from engine.metrics.faithfulness import auto_batch_size
        batch = auto_batch_size(model, images, args.precision)
    else:
        batch = int(args.batch)
    t_plain, _ = timed(lambda: plain_forward(model, images, k, args.precision, batch), dev)
    ours = run_ours(model, images, maps, targets, k, args.precision, batch)
    t_ours = sum(t for t, _ in ours.values())
    other = None
    if args.agreement:
        oprec = "fp32" if args.precision == "bf16" else "bf16"
        other = run_ours(model, images, maps, targets, k, oprec, batch)

    rise, reason = None, None
    if not args.rise:
        reason = "--rise not given"
    elif n_pix % k:
        reason = f"n_steps={k} does not divide {n_pix} (RISE's step would be partial)"
    else:
        try:
            ev = load_rise(args.rise, args.deps, n_pix)
        except ImportError as e:
            reason = f"RISE not importable: {e}"
        else:
            rise = run_rise(ev, model, images, maps, n_pix // k)

    b = args.images
    where = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else \
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    print(f"{args.model} {side}, {b} images, n_steps={k}" + (f" (RISE step={n_pix // k} px)" if not n_pix % k else "")
          + f", batch {batch}, {args.precision}; torch {torch.__version__}, {where}, "
          f"load avg {os.getloadavg()[0]:.2f}\n")
    print("| run | forwards | seconds | ms / forward |")
    print("| --- | ---: | ---: | ---: |")
    n_fwd = (k + 1) * b

    def row(name, t, n):
        print(f"| {name} | {n} | {t:.2f} | {1e3 * t / n:.2f} |")
    row(f"plain forward ((n_steps+1) x {b}, batches of {batch}, {args.precision})", t_plain, n_fwd)
    for name, (t, _) in ours.items():
        row(f"ours {name} ({args.precision})", t, n_fwd)
    row(f"ours ins + del ({args.precision})", t_ours, 2 * n_fwd)
    payload = {"model": args.model, "side": side, "images": b, "n_steps": k, "device": dev, "batch": batch,
               "precision": args.precision, "torch": torch.__version__, "plain_s": t_plain,
               "ours_s": {n: t for n, (t, _) in ours.items()}, "ours_total_s": t_ours}
    if other is not None:
        t_other = sum(t for t, _ in other.values())
        row(f"ours ins + del ({oprec})", t_other, 2 * n_fwd)
        d_prec = {n: float(np.max(np.abs(ours[n][1] - other[n][1]))) for n in ours}
        payload.update({"other_precision": oprec, "other_total_s": t_other, "max_abs_dauc_bf16_fp32": d_prec})
    if rise:
        for name, (t, _) in rise.items():
            row(f"RISE {name} (single_run per image, fp32)", t, n_fwd + b)
        t_rise = sum(t for t, _ in rise.values())
        row("RISE ins + del", t_rise, 2 * (n_fwd + b))
        payload["rise_total_s"] = t_rise

    print("\n| summary | value | goal |")
    print("| --- | ---: | --- |")
    rel = (t_ours / 2) / t_plain
    bad = False
    if rise:
        fp32_auc = ours if args.precision == "fp32" else other
        if fp32_auc is not None:
            d = max(float(np.max(np.abs(fp32_auc[n][1] - rise[n][1]))) for n in ours)
            bad = not d < AUC_TOL
            payload["max_abs_dauc_vs_rise_fp32"] = d
            print(f"| max abs d AUC vs RISE (ours fp32) | {d:.2e} | < {AUC_TOL:g} {'FAIL' if bad else 'ok'} |")
        sp = t_rise / t_ours
        payload["rise_over_ours"] = sp
        print(f"| RISE / ours (ins + del, ours {args.precision}) | {sp:.2f}x | >= {GOAL_SPEEDUP:g}x "
              f"{'ok' if sp >= GOAL_SPEEDUP else 'MISSED'} |")
    verdict = "ok" if rel <= GOAL_PLAIN else "MISSED"
    print(f"| ours per metric / plain forward | {rel:.2f}x | <= {GOAL_PLAIN:g}x {verdict} |")
    if other is not None:
        for n, v in payload["max_abs_dauc_bf16_fp32"].items():
            print(f"| max abs d AUC bf16 vs fp32, {n} | {v:.2e} | <= 2e-3 {'ok' if v <= 2e-3 else 'OVER'} |")
    if not rise:
        payload["rise_skipped"] = reason
        print(f"\nRISE skipped: {reason}")
    else:
        print("\nRISE forwards include its one extra forward per image (to pick the class). Glue: Tensor.cuda "
              f"no-op on CPU, evaluation.HW = {n_pix}, n_classes = {N_CLASSES}.")
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
