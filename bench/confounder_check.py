"""Does the confounded ultrasound demo set do its job?  A measurement, not a test.

Two demo ViTs (``vit_demo``) are fine-tuned with the same short budget: one on the plain
ultrasound-like set, one on its confounded variant (a corner text label on 95 % of the malignant
and 3 % of the other training/validation images; class-independent in test).  Both sets share
the seed, so every test image exists twice, byte-identical except for the label where the
confounded set draws one.  Reported per model:

* test accuracy on the plain test split (is the task learnable?) and on the confounded test split
  (label present at random), split by label presence;
* the causal effect of the label: mean change of P(malignant) and share of changed predictions
  between the two copies of each labelled test image;
* attribution on the labelled test images: ``energy_pg`` (share of positive map mass) on the
  ``marker`` and ``lesion`` regions, next to the marker's area share (what a map blind to the
  marker would put there on average).  A model that reads the label puts many times its area on it.

Run from the repository root (about 3-4 minutes on 2 shared cores)::

    nice .venv/bin/python bench/confounder_check.py [--epochs 6] [--n-train 900] [--out /tmp/confounder_check]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data import ImageDataset, collate_samples  # noqa: E402
from engine.data.synthetic.confounded import ConfoundedConfig, confounded_spec, generate_confounded  # noqa: E402
from engine.data.synthetic.ultrasound import CLASSES, UltrasoundConfig, generate_ultrasound, ultrasound_spec  # noqa: E402
from engine.explain import run_methods, upsample_maps  # noqa: E402
from engine.metrics import METRICS  # noqa: E402
from engine.models import TrainConfig, create_model, evaluate_accuracy, fine_tune, normalise  # noqa: E402

METHODS = ("saliency", "grad_rollout", "chefer_gae", "gradcam", "attention", "rollout", "baseline_random")
MALIGNANT = CLASSES.index("malignant")


def train(spec, cfg: TrainConfig, seed: int):
    train_ds, val_ds = ImageDataset(spec, "train"), ImageDataset(spec, "val")
    torch.manual_seed(seed)
    model, info = create_model("vit_demo", len(CLASSES))
    t0 = time.perf_counter()
    res = fine_tune(model, info, train_ds, val_ds, cfg, progress=False)
    return model.eval(), info, time.perf_counter() - t0, res


@torch.no_grad()
def probs_of(model, info, ds) -> tuple[np.ndarray, np.ndarray]:
    batch = collate_samples([ds[i] for i in range(len(ds))])
    p = torch.softmax(model(normalise(batch["image"], info)), 1).numpy()
    return p, batch["label"].numpy()


def attribution(model, info, ds, idx: list[int], batch_size: int = 32) -> dict:
    """Mean energy_pg on marker and lesion per method over images ``idx`` (predicted class explained)."""
    energy = METRICS["energy_pg"]
    out = {m: {"marker": [], "lesion": []} for m in METHODS}
    area = []
    for s in range(0, len(idx), batch_size):
        batch = collate_samples([ds[i] for i in idx[s:s + batch_size]])
        x = normalise(batch["image"], info)
        maps, _, _ = run_methods(model, x, list(METHODS))
        area += batch["regions"]["marker"].flatten(1).float().mean(1).tolist()
        for m in METHODS:
            up = upsample_maps(maps[m].detach().cpu(), tuple(x.shape[-2:]))
            for region in ("marker", "lesion"):
                out[m][region] += energy(up, batch["regions"][region]).tolist()
    return {"marker_area": float(np.mean(area)),
            **{m: {r: float(np.nanmean(v)) for r, v in d.items()} for m, d in out.items()}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=900)
    ap.add_argument("--n-val", type=int, default=150)
    ap.add_argument("--n-test", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate-class", type=float, default=ConfoundedConfig.marker_rate_class)
    ap.add_argument("--rate-other", type=float, default=ConfoundedConfig.marker_rate_other)
    ap.add_argument("--lesions", choices=("subtle", "plain"), default="subtle",
                    help="malignant cues of the confounded set's default (subtle) or of the plain ultrasound set")
    ap.add_argument("--models", default="plain,confounded", help="which of the two models to train")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/confounder_check"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")

    us = replace(ConfoundedConfig().ultrasound if args.lesions == "subtle" else UltrasoundConfig(),
                 n_train=args.n_train, n_val=args.n_val, n_test=args.n_test, seed=args.seed)
    conf = ConfoundedConfig(ultrasound=us, marker_rate_class=args.rate_class, marker_rate_other=args.rate_other)
    specs = {"plain": ultrasound_spec(generate_ultrasound(args.out / "plain", us, progress=False)),
             "confounded": confounded_spec(generate_confounded(args.out / "confounded", conf, progress=False))}
    # no flips/rotations: depth (shadowing below the lesion) has a direction in ultrasound
    tcfg = TrainConfig(epochs=args.epochs, lr=args.lr, warmup_epochs=1, flips=False, rot90=False, seed=args.seed)
    test = {k: ImageDataset(s, "test") for k, s in specs.items()}
    assert [r.image_id for r in test["plain"].records] == [r.image_id for r in test["confounded"].records]
    marked = np.array([bool(test["confounded"][i].regions["marker"].any()) for i in range(len(test["confounded"]))])
    report = {"config": {**vars(args), "out": str(args.out), "train": tcfg.to_dict()}, "models": {}}
    for name in args.models.split(","):
        spec = specs[name]
        model, info, secs, res = train(spec, tcfg, args.seed)
        p_plain, y = probs_of(model, info, test["plain"])
        p_conf, _ = probs_of(model, info, test["confounded"])
        pred_plain, pred_conf = p_plain.argmax(1), p_conf.argmax(1)
        r = {"train_seconds": round(secs, 1), "best_val_accuracy": res.best_val_accuracy,
             "test_acc_plain": float((pred_plain == y).mean()),
             "test_acc_confounded": float((pred_conf == y).mean()),
             "test_acc_confounded_marked": float((pred_conf == y)[marked].mean()),
             "test_acc_confounded_unmarked": float((pred_conf == y)[~marked].mean()),
             "marker_dp_malignant": float((p_conf[:, MALIGNANT] - p_plain[:, MALIGNANT])[marked].mean()),
             "marker_flip_rate": float((pred_conf != pred_plain)[marked].mean()),
             "pred_malignant_rate_marked": float((pred_conf[marked] == MALIGNANT).mean()),
             "pred_malignant_rate_unmarked": float((pred_conf[~marked] == MALIGNANT).mean())}
        assert abs(evaluate_accuracy(model, info, test["confounded"], "cpu")[0] - r["test_acc_confounded"]) < 1e-9
        r["attribution_marked_test"] = attribution(model, info, test["confounded"], np.flatnonzero(marked).tolist())
        report["models"][name] = r
        print(f"[{name}] trained {secs:.0f}s, best val acc {res.best_val_accuracy:.3f}", flush=True)

    print(f"\ntest images: {len(y)} ({marked.sum()} with the marker); marker rates train/val "
          f"{args.rate_class:.2f} malignant / {args.rate_other:.2f} others, test {conf.overall_rate:.2f} every class")
    rows = [("best val acc (own val split)", "best_val_accuracy"), ("test acc, plain test", "test_acc_plain"),
            ("test acc, confounded test", "test_acc_confounded"),
            ("  ... images with marker", "test_acc_confounded_marked"),
            ("  ... images without marker", "test_acc_confounded_unmarked"),
            ("P(pred malignant | marker)", "pred_malignant_rate_marked"),
            ("P(pred malignant | no marker)", "pred_malignant_rate_unmarked"),
            ("marker effect: mean dP(malignant)", "marker_dp_malignant"),
            ("marker effect: predictions changed", "marker_flip_rate")]
    names = list(report["models"])
    print(f"{'trained on':38s}" + "".join(f"{n:>12s}" for n in names))
    for label, key in rows:
        print(f"{label:38s}" + "".join(f"{report['models'][n][key]:12.3f}" for n in names))
    area = report["models"][names[0]]["attribution_marked_test"]["marker_area"]
    print(f"\nenergy_pg on the marked test images (marker area share {area:.3f}); marker / lesion")
    for m in METHODS:
        print(f"{m:38s}" + "".join(f"{report['models'][n]['attribution_marked_test'][m]['marker']:7.3f}/"
                                   f"{report['models'][n]['attribution_marked_test'][m]['lesion']:5.3f}"
                                   for n in names))
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"\nreport: {args.out / 'report.json'}")
    return report


if __name__ == "__main__":
    main()
