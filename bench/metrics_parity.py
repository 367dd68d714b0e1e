"""Parity of engine.metrics with public reference implementations (see bench/README.md).

The references are never copied into this repository: pass the paths of their checkouts and they are
put on ``sys.path`` at run time.  Everything runs on CPU on small random inputs (a few seconds).

    .venv/bin/python bench/metrics_parity.py --rise PATH --torchray PATH --quantus PATH --deps DIR

* RISE (eclique/RISE ``evaluation.py``): ``CausalMetric.single_run`` + ``auc`` vs insertion/deletion_auc.
* TorchRay (``torchray/benchmark/pointing_game.py``): ``PointingGame.evaluate`` vs pointing_game.
* Quantus: PointingGame, RelevanceRankAccuracy, RelevanceMassAccuracy, AttributionLocalisation,
  TopKIntersection (needs --deps with scikit-learn, scikit-image, opencv, cachetools ... see README).
* scikit-learn ``average_precision_score`` vs auprc; a direct numpy computation vs iou_top5.

Rows: ``ok``/``FAIL`` are gated (tolerance per row: 1e-4 for AUCs, exact for hits, 1e-6 for ratios;
exit status 1 on any FAIL); ``diag`` rows show a documented, intended difference (informational).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.metrics import METRICS  # noqa: E402

ROWS: list[dict] = []
AUC_TOL, RATIO_TOL, EXACT = 1e-4, 1e-6, 0.0


class Skip(Exception):
    """An expected reason not to run a row (reference not given, dependency missing...)."""


def record(metric, ref, config, ours, theirs, tol=None, note=""):
    """tol=None: a diagnostic row.  NaN must sit at the same places on both sides (else diff = inf)."""
    ours, theirs = np.asarray(ours, np.float64).ravel(), np.asarray(theirs, np.float64).ravel()
    same_nan = np.array_equal(np.isnan(ours), np.isnan(theirs))
    fin = ~np.isnan(ours) & ~np.isnan(theirs)
    d = float(np.max(np.abs(ours[fin] - theirs[fin]), initial=0.0)) if same_nan else math.inf
    status = "diag" if tol is None else ("ok" if d <= tol else "FAIL")
    ROWS.append(dict(metric=metric, ref=ref, config=config, diff=d, status=status, note=note))


def skip(metric, ref, reason):
    ROWS.append(dict(metric=metric, ref=ref, config="-", diff=None, status="skip", note=reason))


@contextlib.contextmanager
def on_path(*paths):
    added = [str(p) for p in paths if p]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            sys.path.remove(p)


# ---------------------------------------------------------------- inputs
def boxes(g, b, h, w, lo, hi):
    reg = torch.zeros(b, h, w, dtype=torch.bool)
    for i in range(b):
        bh, bw = (int(v) for v in torch.randint(lo, hi + 1, (2,), generator=g))
        y = int(torch.randint(0, h - bh + 1, (1,), generator=g))
        x = int(torch.randint(0, w - bw + 1, (1,), generator=g))
        reg[i, y:y + bh, x:x + bw] = True
    return reg


def plant(maps, regions, g):
    """Move the maximum of every other map onto a random pixel of its region (so that hits occur)."""
    for i in range(0, len(maps), 2):
        idx = regions[i].flatten().nonzero().flatten()
        maps[i].view(-1)[idx[int(torch.randint(len(idx), (1,), generator=g))]] = maps[i].max() + 1
    return maps


def make_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    b, h, w = 8, 32, 32
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 10)).eval()
    images = torch.randn(b, 3, h, w, generator=g)
    # tie-free maps: a permutation of 0..HW-1 (exact in float32, so no tie appears by rounding)
    perm_maps = torch.stack([torch.randperm(h * w, generator=g) for _ in range(b)]).float().view(b, h, w) / (h * w)
    signed = torch.randn(32, h, w, generator=g, dtype=torch.float64)          # continuous, signed, no ties
    tied = torch.floor(torch.rand(32, h, w, generator=g, dtype=torch.float64) * 8) / 8  # 8 levels: many ties
    regions = boxes(g, 32, h, w, 3, 16)
    plant(signed, regions, g)
    return dict(model=model, images=images, perm_maps=perm_maps, signed=signed, tied=tied, regions=regions, g=g)


# ---------------------------------------------------------------- RISE
def rise_rows(path, d):
    sys.modules.setdefault("scipy.ndimage.filters", importlib.import_module("scipy.ndimage"))  # removed in SciPy 2
    saved = sys.modules.pop("utils", None)  # RISE does `from utils import *` (its own utils.py)
    with on_path(path):
        ev = importlib.import_module("evaluation")
    if saved is not None:
        sys.modules["utils"] = saved
    model, images, maps = d["model"], d["images"], d["perm_maps"]
    b, _, h, w = images.shape
    ev.HW, ev.n_classes = h * w, 10                      # module-level constants (224*224, 1000 in RISE)
    smodel = nn.Sequential(model, nn.Softmax(dim=1)).eval()  # RISE wraps the model in a softmax
    kern, klen = ev.gkern(11, 5), 11
    blur = lambda x: nn.functional.conv2d(x, kern, padding=klen // 2)  # noqa: E731  (RISE's notebook)
    with torch.no_grad():
        targets = model(images).argmax(1)             # RISE explains the argmax class of the image
    cuda = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self    # RISE calls .cuda(): no-op on CPU
    try:
        for step in (16, 64, 100):
            for mode, name, sub in (("ins", "insertion_auc", blur), ("del", "deletion_auc", torch.zeros_like)):
                cm = ev.CausalMetric(smodel, mode, step, sub)
                with torch.no_grad():
                    curves = [cm.single_run(images[i:i + 1].clone(), maps[i].numpy()) for i in range(b)]
                ref = np.array([ev.auc(c) for c in curves])
                n_steps = (h * w + step - 1) // step
                auc, _, y = METRICS[name](maps, model=model, images=images, targets=targets, n_steps=n_steps,
                                          batch_size=64, return_curves=True)
                divides = (h * w) % step == 0
                note = (f"curves max|d|={np.abs(y - np.stack(curves)).max():.1e}" if divides else
                        f"RISE's last step is partial ({h * w % step} px) but it spaces steps equally; "
                        f"ours switches round(i*HW/n) px")
                record(name, "RISE single_run+auc", f"step={step} (n_steps={n_steps}), B={b}, patched*", auc, ref,
                       AUC_TOL if divides else None, note)
    finally:
        torch.Tensor.cuda = cuda


# ---------------------------------------------------------------- TorchRay
def torchray_rows(path, d):
    with on_path(path):
        from torchray.benchmark.pointing_game import PointingGame
    g = d["g"]
    b, h, w = 48, 64, 64
    maps = torch.randn(b, h, w, generator=g, dtype=torch.float64)
    regions = boxes(g, b, h, w, 2, 12)
    plant(maps, regions, g)
    # boundary cases: one region pixel at distance exactly 15 from the maximum ((9, 12) and (15, 0) offsets)
    edge_m, edge_r = torch.zeros(2, h, w, dtype=torch.float64), torch.zeros(2, h, w, dtype=torch.bool)
    edge_m[:, 30, 30] = 1.0
    edge_r[0, 30 + 9, 30 + 12] = edge_r[1, 30, 30 + 15] = True

    def ref(maps, regions, tol):
        out = []
        for m, r in zip(maps, regions):
            y, x = divmod(int(m.flatten().argmax()), m.shape[1])
            out.append(1.0 if PointingGame(1, tolerance=tol).evaluate(r, (x, y)) == 1 else 0.0)  # point = (u, v)
        return np.array(out)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.meshgrid without indexing= (it uses 'ij')
        pg = METRICS["pointing_game"]
        r15 = ref(maps, regions, 15)
        record("pointing_game", "TorchRay PointingGame", f"tol=15, {b} maps {h}x{w}, unique max",
               pg(maps, regions, tolerance_px=15), r15, EXACT,
               f"hit rate {r15.mean():.2f} (at tolerance 1: {ref(maps, regions, 1).mean():.2f})")
        record("pointing_game", "TorchRay PointingGame", "ours tol=0 vs TorchRay tolerance=1",
               pg(maps, regions, tolerance_px=0), ref(maps, regions, 1), EXACT,
               "TorchRay tolerance=0 accepts nothing (d^2 < 0): always a miss")
        both_m, both_r = torch.cat([maps, edge_m]), torch.cat([regions, edge_r])
        record("pointing_game", "TorchRay PointingGame", "ours tol=sqrt(224) vs TorchRay 15, incl. d=15 cases",
               pg(both_m, both_r, tolerance_px=math.sqrt(224)), ref(both_m, both_r, 15), EXACT,
               "TorchRay's disk d^2 < t^2 == ours d^2 <= t^2-1 for integer t")
        ours_e, ref_e = pg(edge_m, edge_r, tolerance_px=15), ref(edge_m, edge_r, 15)
        record("pointing_game", "TorchRay PointingGame", "tol=15, region pixel at d=15 exactly", ours_e, ref_e,
               None, f"ours {ours_e.tolist()} (d <= 15) vs TorchRay {ref_e.tolist()} (d < 15)")


# ---------------------------------------------------------------- Quantus
def quantus_rows(path, deps, d):
    with on_path(path, deps), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        quantus = importlib.import_module("quantus")
    signed, tied, regions = d["signed"], d["tied"], d["regions"]
    b, h, w = signed.shape
    x = np.random.default_rng(0).standard_normal((b, 3, h, w))

    def q(cls, maps, regs=regions, **kw):
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            m = getattr(quantus, cls)(disable_warnings=True, **kw)
            out = m(model=None, x_batch=x, y_batch=np.zeros(b, int), a_batch=maps.numpy()[:, None],
                    s_batch=regs.numpy()[:, None].astype(float))
        return np.array(out, dtype=np.float64)

    M = {k: METRICS[k] for k in ("pointing_game", "rank_accuracy", "mass_accuracy", "energy_pg", "iou_top5")}
    pos = signed.abs()
    empty = regions.clone()
    empty[:4] = False
    nan_note = "4 of 32 regions empty: NaN on both sides"
    record("pointing_game", "Quantus PointingGame", "defaults (abs=False, normalise=True), tol=0, unique max",
           M["pointing_game"](signed, regions), q("PointingGame", signed), EXACT,
           f"hit rate {M['pointing_game'](signed, regions).mean():.2f}")
    ours, ref = M["pointing_game"](signed, empty), q("PointingGame", signed, empty)
    record("pointing_game", "Quantus PointingGame", "4 empty regions", ours, ref, None,
           f"empty: ours {ours[:4].tolist()}, Quantus {ref[:4].tolist()} (np.nan stored in a bool array = True)")
    const = torch.arange(1.0, b + 1, dtype=torch.float64)[:, None, None].expand(b, h, w)  # all-0 batch: Quantus asserts
    ours, ref = M["pointing_game"](const, regions), q("PointingGame", const)
    record("pointing_game", "Quantus PointingGame", "constant maps (per-image value; all tie)", ours, ref, None,
           f"ours = region area share (mean {ours.mean():.3f}); Quantus = any tied max inside (mean {ref.mean():.2f})")
    record("rank_accuracy", "Quantus RelevanceRankAccuracy", "defaults (abs=False, normalise=True), no ties",
           M["rank_accuracy"](signed, empty), q("RelevanceRankAccuracy", signed, empty), RATIO_TOL, nan_note)
    record("rank_accuracy", "Quantus RelevanceRankAccuracy", "defaults, 8-level maps (ties)",
           M["rank_accuracy"](tied, regions), q("RelevanceRankAccuracy", tied), None,
           "ours: expected share of tied pixels; Quantus: np.argsort order")
    record("mass_accuracy", "Quantus RelevanceMassAccuracy", "abs=True, normalise=True, signed maps",
           M["mass_accuracy"](signed, empty), q("RelevanceMassAccuracy", signed, empty, abs=True), RATIO_TOL, nan_note)
    record("mass_accuracy", "Quantus RelevanceMassAccuracy", "defaults (abs=False, normalise=True), maps >= 0",
           M["mass_accuracy"](pos, regions), q("RelevanceMassAccuracy", pos), RATIO_TOL)
    ref = q("RelevanceMassAccuracy", signed)
    record("mass_accuracy", "Quantus RelevanceMassAccuracy", "defaults (abs=False), signed maps",
           M["mass_accuracy"](signed, regions), ref, None,
           f"Quantus' default sums signed values (range [{ref.min():.2f}, {ref.max():.2f}]); ours = abs=True")
    record("energy_pg", "Quantus AttributionLocalisation", "abs=False, positive_attributions=True, normalise=True",
           M["energy_pg"](signed, empty),
           q("AttributionLocalisation", signed, empty, abs=False, positive_attributions=True), RATIO_TOL,
           "same ratio (Kohlbrenner et al. 2020; Quantus adds 1e-9 to the denominator); " + nan_note)
    k = math.ceil(0.05 * h * w)
    ours, ref = M["iou_top5"](signed, regions), q("TopKIntersection", signed, k=k)
    record("iou_top5", "Quantus TopKIntersection", f"k={k} px (5 % of {h * w})", ours, ref, None,
           f"by design: image 0 IoU {ours[0]:.4f} vs precision |top-k & R|/k {ref[0]:.4f}")


# ---------------------------------------------------------------- scikit-learn / numpy
def sklearn_rows(deps, d):
    try:
        with on_path(deps):
            from sklearn.metrics import average_precision_score
    except ImportError as e:
        raise Skip(f"scikit-learn not importable ({e}); give --deps") from None
    for name in ("signed", "tied"):
        maps, regions = d[name], d["regions"]
        ref = [average_precision_score(r.flatten().numpy(), m.flatten().numpy()) for m, r in zip(maps, regions)]
        record("auprc", "sklearn average_precision_score", f"{name} maps ({len(maps)} x 32x32)",
               METRICS["auprc"](maps, regions), ref, RATIO_TOL)


def numpy_rows(d):
    for name in ("signed", "tied"):
        maps, regions = d[name].numpy(), d["regions"].numpy()
        ref = []
        for m, r in zip(maps.reshape(len(maps), -1), regions.reshape(len(maps), -1)):
            top = m >= np.sort(m)[::-1][math.ceil(0.05 * m.size) - 1]  # every pixel >= the ceil(5% HW)-th value
            ref.append((top & r).sum() / (top | r).sum())
        record("iou_top5", "numpy (direct)", f"{name} maps", METRICS["iou_top5"](d[name], d["regions"]), ref,
               RATIO_TOL)


# ---------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rise", help="checkout of eclique/RISE")
    p.add_argument("--torchray", help="checkout of facebookresearch/TorchRay")
    p.add_argument("--quantus", help="checkout of understandable-machine-intelligence-lab/Quantus")
    p.add_argument("--deps", help="pip --target dir with Quantus' and sklearn's extra dependencies")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    d = make_inputs(args.seed)
    jobs = [("insertion/deletion_auc", "RISE", args.rise, lambda: rise_rows(args.rise, d)),
            ("pointing_game", "TorchRay", args.torchray, lambda: torchray_rows(args.torchray, d)),
            ("localisation", "Quantus", args.quantus, lambda: quantus_rows(args.quantus, args.deps, d)),
            ("auprc", "sklearn", True, lambda: sklearn_rows(args.deps, d)),
            ("iou_top5", "numpy", True, lambda: numpy_rows(d))]
    for metric, ref, given, fn in jobs:
        if not given:
            skip(metric, ref, f"--{ref.lower()} not given")
            continue
        try:
            fn()
        except Skip as e:
            skip(metric, ref, str(e))
        except ImportError as e:
            skip(metric, ref, f"not importable: {e}")
    cols = ("metric", "ref", "config", "diff", "status")
    table = [[r["metric"], r["ref"], r["config"], "-" if r["diff"] is None else f"{r['diff']:.2e}", r["status"]]
             for r in ROWS]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(wd) for c, wd in zip(("metric", "reference", "config", "max|d|", "ok?"), widths)))
    for t, r in zip(table, ROWS):
        print("  ".join(v.ljust(wd) for v, wd in zip(t, widths)) + (f"  {r['note']}" if r["note"] else ""))
    bad = [r for r in ROWS if r["status"] == "FAIL"]
    if any(r["config"].endswith("patched*") for r in ROWS):
        print("* RISE patched at run time: Tensor.cuda() a no-op (CPU), evaluation.HW = 32*32, n_classes = 10")
    print(f"\n{sum(r['status'] == 'ok' for r in ROWS)} ok, {len(bad)} FAIL, "
          f"{sum(r['status'] == 'diag' for r in ROWS)} diag, {sum(r['status'] == 'skip' for r in ROWS)} skipped")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
