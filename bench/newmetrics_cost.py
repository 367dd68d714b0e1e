"""CPU cost of issue 23's items 5-7 (class sensitivity, both classes of misclassified images, ROAD) on the
default demo, from per-image costs measured here and the demo's counts (see docs/benchmarks.md).

    .venv/bin/python bench/newmetrics_cost.py [--images 16] [--threads 1]

On the demo ViT (``vit_demo``, 64 x 64, random weights: the cost does not depend on training) and
``--images`` generated smear images, CPU seconds (``time.process_time``) per image of:

* explaining with each method list of the default demo (13 methods for the smear models, 7 for the
  strategy models, 10 for the ultrasound / confounded models) -- what class sensitivity adds three times
  (its stage explains the predicted class again, then the second most likely and a random other class)
  and the true-class maps add once per misclassified image,
  with their localisation scores (6 metrics, mask + box regions) and the similarities;
* ROAD (MoRF + LeRF, 9 percentiles each) per map against insertion + deletion at the demo's 8 steps.

The default demo's counts come from data/experiments/demo.toml (64 scored images per model).  The share of
misclassified images is not known before training: the extra cost of item 6 is given at the quick demo's
measured share and at its upper bound (every image misclassified).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.explain import run_methods, upsample_maps  # noqa: E402
from engine.metrics import METRICS  # noqa: E402

SMEAR = ["attention", "rollout", "grad_rollout", "chefer_gae", "chefer_lrp", "gradcam_attn", "gradcam", "saliency",
         "smoothgrad", "integrated_gradients", "occlusion", "baseline_random", "baseline_centre"]
STRATEGY = ["attention", "rollout", "grad_rollout", "chefer_gae", "chefer_lrp", "gradcam_attn", "baseline_random"]
ULTRASOUND = ["attention", "rollout", "grad_rollout", "chefer_gae", "chefer_lrp", "gradcam_attn", "gradcam",
              "saliency", "baseline_random", "baseline_centre"]
PARAMS = {"smoothgrad": {"nt_samples": 4}, "integrated_gradients": {"n_steps": 8}}
LOCALISATION = ["pointing_game", "iou_top5", "energy_pg", "mass_accuracy", "rank_accuracy", "auprc"]
# (method list, models) of the default demo; 64 scored images per model
DEMO = {"smear (trained, random)": (SMEAR, 2), "strategy (scratch, supervised, dino, mae)": (STRATEGY, 4),
        "ultrasound (trained, random), confounded": (ULTRASOUND, 3)}
DEMO_IMAGES = 64
DEMO_CPU_S = 764.0            # README: the default demo from scratch, CPU seconds
QUICK_MISCLASSIFIED = 0.62    # misclassified test images over the quick demo's 8 models: 109 of 176 (one run)


def cpu(fn):
    c0 = time.process_time()
    out = fn()
    return time.process_time() - c0, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from engine.models import create_model
    torch.manual_seed(0)
    model, _ = create_model("vit_demo", 4, pretrained=False)
    model.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.images, 3, 64, 64, generator=g)
    regions = {"mask": torch.rand(args.images, 64, 64, generator=g) > 0.7,
               "box": torch.rand(args.images, 64, 64, generator=g) > 0.5}
    with torch.no_grad():
        logits = model(x)
    t = logits.argmax(1)
    other = (t + 1) % 4
    b = args.images
    print(f"{b} images, 64 x 64, demo ViT, {args.threads} thread(s); CPU ms per image")
    extra = {}
    for name, (methods, n_models) in DEMO.items():
        params = {m: PARAMS.get(m, {}) for m in methods}
        run_methods(model, x[:2], methods, None, params)  # warm-up
        e, maps = cpu(lambda: run_methods(model, x, methods, other, params)[0])
        ups = {m: upsample_maps(v, (64, 64)) for m, v in maps.items()}
        loc, _ = cpu(lambda: [METRICS[k](u, r) for u in ups.values() for k in LOCALISATION for r in regions.values()])
        sim, _ = cpu(lambda: [METRICS[k](v, v.flip(-1)) for v in maps.values() for k in
                              ("class_ssim_second", "class_spearman_second")])
        # its own runner stage: the explained class's maps again, then the two other classes; 2 x 2 similarities
        item5 = 3 * e + sim
        item6 = e + loc                # one extra pass and its localisation scores, per misclassified image
        extra[name] = (n_models, item5 / b, item6 / b, len(methods))
        print(f"  {name}: explain {len(methods)} methods {1000 * e / b:.1f}; localisation scores of them "
              f"{1000 * loc / b:.1f}; class similarities (2 metrics) {1000 * sim / b:.1f}")
    m = upsample_maps(run_methods(model, x, ["chefer_gae"], None, {})[0]["chefer_gae"], (64, 64))
    kw = dict(model=model, images=x, targets=t)
    ins, _ = cpu(lambda: METRICS["insertion_auc"](m, n_steps=8, **kw))
    dele, _ = cpu(lambda: METRICS["deletion_auc"](m, n_steps=8, **kw))
    morf, _ = cpu(lambda: METRICS["road_morf_auc"](m, **kw))
    lerf, _ = cpu(lambda: METRICS["road_lerf_auc"](m, **kw))
    print(f"  per map: insertion (8 steps) {1000 * ins / b:.1f}, deletion (8 steps) {1000 * dele / b:.1f}, "
          f"ROAD MoRF {1000 * morf / b:.1f}, ROAD LeRF {1000 * lerf / b:.1f} "
          f"(ROAD / insertion+deletion = {(morf + lerf) / (ins + dele):.2f})")
    road_map = (morf + lerf) / b
    tot5 = sum(n * DEMO_IMAGES * c5 for n, c5, _, _ in extra.values())
    tot6_q = sum(n * DEMO_IMAGES * QUICK_MISCLASSIFIED * c6 for n, _, c6, _ in extra.values())
    tot6_max = sum(n * DEMO_IMAGES * c6 for n, _, c6, _ in extra.values())
    maps_total = sum(n * DEMO_IMAGES * k for n, _, _, k in extra.values())
    tot7 = maps_total * road_map
    print(f"default demo ({maps_total} maps, {DEMO_CPU_S:.0f} CPU s): estimated extra CPU s")
    print(f"  item 5 class sensitivity (4 metrics): {tot5:.0f} s = {100 * tot5 / DEMO_CPU_S:.0f} %")
    print(f"  item 6 both classes: {tot6_q:.0f} s = {100 * tot6_q / DEMO_CPU_S:.0f} % at {QUICK_MISCLASSIFIED:.0%} "
          f"misclassified; at most {tot6_max:.0f} s = {100 * tot6_max / DEMO_CPU_S:.0f} %")
    print(f"  item 7 ROAD (MoRF + LeRF): {tot7:.0f} s = {100 * tot7 / DEMO_CPU_S:.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
