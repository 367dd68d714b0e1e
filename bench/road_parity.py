"""ROAD parity with pytorch-grad-cam, and the cost of ROAD against insertion / deletion (see bench/README.md).

pytorch-grad-cam is never copied into this repository: pass its checkout (``--grad-cam``, the folder that
holds ``pytorch_grad_cam/``) and a folder with opencv (``--deps``; its ``perturbation_confidence`` imports
cv2).  Only ``pytorch_grad_cam.metrics`` is loaded (its package ``__init__`` would pull in scikit-learn).

    .venv/bin/python bench/road_parity.py --grad-cam /tmp/refs/pytorch-grad-cam --deps /tmp/refs/deps

Parity (gated at 1e-5, exit status 1 on a FAIL): a seeded small CNN on 32 x 32 images, tie-free maps (a
random permutation of 0 .. HW-1, scaled), every percentile of the default set.  For each image and percent
removed r, pytorch-grad-cam's ``ROADMostRelevantFirst(100 - r)`` / ``ROADLeastRelevantFirst(100 - r)`` with
a softmax target and ``return_diff=False`` is called on that image alone, after ``torch.manual_seed(seed)``
(its ``NoisyLinearImputer`` draws ``randn_like`` from the global generator), against our
``road_curves`` (which seeds a generator with ``seed`` per image and percentile).  Rows: noise 0 (the
imputation alone) and the default noise 0.01 seeded identically, the imputed images themselves and the
class probabilities.

Cost: the demo ViT (``vit_demo``, random weights, 64 x 64, 4 classes) on ``--cost-images`` images:
CPU seconds (``time.process_time``) and images per second of ROAD MoRF + LeRF (9 percentiles each), of
the imputation alone, and of insertion and deletion (``--n-steps``) on the same images and maps.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.metrics import METRICS  # noqa: E402
from engine.metrics.road import (  # noqa: E402
    NOISE_DEFAULT,
    PERCENTILES_DEFAULT,
    impute,
    removed_pixels,
    road_curves,
)

TOL = 1e-5


def load_reference(grad_cam: Path, deps: Path | None):
    """pytorch_grad_cam.metrics.road without running the package's ``__init__``."""
    for p in (deps, grad_cam):
        if p:
            sys.path.insert(0, str(p))
    for name, sub in (("pytorch_grad_cam", ""), ("pytorch_grad_cam.metrics", "metrics")):
        mod = types.ModuleType(name)
        mod.__path__ = [str(grad_cam / "pytorch_grad_cam" / sub)]
        sys.modules[name] = mod
    return importlib.import_module("pytorch_grad_cam.metrics.road")


def small_model(seed: int, classes: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, classes)).eval()


def tie_free_maps(b: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(h * w, generator=g).float().view(h, w) / (h * w) for _ in range(b)])


def softmax_target(cls: int):
    return lambda out: torch.softmax(out, dim=-1)[cls]


def parity(ref, args) -> list[dict]:
    b, h, w = args.images, args.size, args.size
    model = small_model(args.seed)
    g = torch.Generator().manual_seed(args.seed + 1)
    images = torch.randn(b, 3, h, w, generator=g)
    maps = tie_free_maps(b, h, w, args.seed + 2)
    with torch.no_grad():
        targets = model(images).argmax(1)
    rows = []
    for noise in (0.0, NOISE_DEFAULT):
        for most in (True, False):
            name = "MoRF" if most else "LeRF"
            # imputed images: ours vs NoisyLinearImputer on grad-cam's keep mask (1 = kept)
            d_img = 0.0
            for i in range(b):
                for r in PERCENTILES_DEFAULT:
                    removed = removed_pixels(maps[i].numpy(), r, most)
                    ours = impute(images[i].numpy(), removed, noise, args.seed)
                    torch.manual_seed(args.seed)
                    keep = torch.from_numpy((~removed).astype(np.float32))
                    theirs = ref.NoisyLinearImputer(noise=noise)(images[i], keep)
                    d_img = max(d_img, float(np.abs(ours - theirs.numpy()).max()))
            rows.append(dict(check=f"{name} imputed images", noise=noise, diff=d_img))
            # probabilities through the full metric
            _, y = road_curves(model, maps, images, targets, PERCENTILES_DEFAULT, most, noise, args.seed)
            theirs = np.zeros((b, len(PERCENTILES_DEFAULT)))
            cls = ref.ROADMostRelevantFirst if most else ref.ROADLeastRelevantFirst
            for i in range(b):
                for k, r in enumerate(PERCENTILES_DEFAULT):
                    metric = cls(percentile=100 - r)
                    metric.perturbation.imputer.noise = noise
                    torch.manual_seed(args.seed)
                    theirs[i, k] = metric(images[i:i + 1], maps[i:i + 1].numpy(), [softmax_target(int(targets[i]))],
                                          model, return_diff=False)[0]
            diff = float(np.abs(y[:, 1:] - theirs).max())
            rows.append(dict(check=f"{name} class probability", noise=noise, diff=diff))
    for row in rows:
        row["status"] = "ok" if row["diff"] <= TOL else "FAIL"
    return rows


def cost(args) -> list[dict]:
    from engine.models import create_model
    torch.manual_seed(args.seed)
    model, _ = create_model("vit_demo", 4, pretrained=False)
    model.eval()
    b = args.cost_images
    g = torch.Generator().manual_seed(args.seed)
    images = torch.randn(b, 3, 64, 64, generator=g)
    maps = torch.rand(b, 64, 64, generator=g)
    with torch.no_grad():
        targets = model(images).argmax(1)
    out = []

    def timed(label, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out.append(dict(what=label, images=b, cpu_s=cpu, wall_s=wall, images_per_s=b / wall, cpu_s_per_image=cpu / b))

    kw = dict(model=model, images=images, targets=targets)
    timed(f"insertion_auc n_steps={args.n_steps}", lambda: METRICS["insertion_auc"](maps, n_steps=args.n_steps, **kw))
    timed(f"deletion_auc n_steps={args.n_steps}", lambda: METRICS["deletion_auc"](maps, n_steps=args.n_steps, **kw))
    timed("road_morf_auc (9 percentiles)", lambda: METRICS["road_morf_auc"](maps, **kw))
    timed("road_lerf_auc (9 percentiles)", lambda: METRICS["road_lerf_auc"](maps, **kw))

    def imputation_only():
        for i in range(b):
            for most in (True, False):
                for r in PERCENTILES_DEFAULT:
                    impute(images[i].numpy(), removed_pixels(maps[i].numpy(), r, most), NOISE_DEFAULT, 0)
    timed("imputation alone (MoRF + LeRF, 18 per image)", imputation_only)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grad-cam", type=Path, help="checkout holding pytorch_grad_cam/ (parity skipped without it)")
    ap.add_argument("--deps", type=Path, help="folder with opencv (cv2) for pytorch-grad-cam")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cost-images", type=int, default=32)
    ap.add_argument("--n-steps", type=int, default=12, help="insertion / deletion steps (the demo uses 12)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    failed = False
    if args.grad_cam:
        ref = load_reference(args.grad_cam.resolve(), args.deps.resolve() if args.deps else None)
        print(f"parity with pytorch-grad-cam ({args.images} images, {args.size} x {args.size}, percent removed "
              f"{list(PERCENTILES_DEFAULT)}), tolerance {TOL:g}:")
        for row in parity(ref, args):
            print(f"  {row['status']:4s} {row['check']:28s} noise={row['noise']:<5g} "
                  f"max |ours - ref| = {row['diff']:.2e}")
            failed |= row["status"] == "FAIL"
    else:
        print("parity skipped: --grad-cam not given")
    print(f"cost on the demo ViT (64 x 64, random weights, 1 thread), {args.cost_images} images:")
    for row in cost(args):
        print(f"  {row['what']:46s} {row['cpu_s']:7.2f} CPU s  {row['wall_s']:7.2f} s wall  "
              f"{row['images_per_s']:7.2f} images/s  {row['cpu_s_per_image'] * 1000:7.1f} CPU ms/image")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
