"""Explanation throughput on CPU: images/s per method beside a bare forward + backward.

    .venv/bin/python bench/explain_throughput.py [--model vit_small_patch16_224] [--batch 32] [--reps 3]
                                                 [--captum-images 4] [--memory] [--write docs/benchmarks.md]

* ``bare fwd+bwd``: the timm model with its fused attention, logits of the predicted class summed and
  back-propagated to the input-free graph (what any gradient method must at least pay).
* each trace method alone, the six trace methods together (one shared trace), and the seven with
  ``chefer_lrp``; Captum methods on ``--captum-images`` images (they cost many passes per image).
* ``--memory``: peak resident memory per image of ViT-B/16, batch 32, in a fresh subprocess for each of
  (six trace methods, ``attention`` alone with only its block kept).
* ``--chefer/--vit-explain/--grad-cam/--deps`` (checkouts as for bench/parity.py, whose loaders are
  reused): ViT-B/16 at 224 on ``--ref-images`` images, (a) a bare fused forward + backward per image,
  (b) the reference implementations run one after another per image, each with its own forward/backward
  as shipped, (c) ``run_methods`` with the same seven methods on the images as one batch; ``--refs-only``
  skips the tables above.

Random weights (the cost does not depend on them).  Numbers are medians over ``--reps`` runs after a
warm-up run.  This is a benchmark, not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import copy
import logging
import platform
import statistics
import subprocess
import sys
import time
import warnings
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))  # parity.py: the references' loaders

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


# ---------------------------------------------------------------- reference implementations, one image at a time
SEVEN = SIX + ["chefer_lrp"]


def reference_runners(args, model) -> dict:
    """name -> fn(x1, target): each reference as it ships, batch of one (``target``: the predicted class, for
    vit-explain's grad rollout, which takes it as an argument; the others find it themselves)."""
    from parity import CONFIGS, Skip, cuda_noop, import_from, unfused_copy
    cfg, runners = CONFIGS["vitb16"], {}

    def vit_explain():
        vr, vg = import_from(args.vit_explain, "vit_rollout", "vit_grad_rollout")
        ro = vr.VITAttentionRollout(unfused_copy(model), head_fusion="mean", discard_ratio=0.0)
        gro = vg.VITAttentionGradRollout(unfused_copy(model), discard_ratio=0.0)

        def grad_rollout(x1, target):
            gro.attentions, gro.attention_gradients = [], []  # the class never clears them itself
            with warnings.catch_warnings():  # its non-full module backward hook warns
                warnings.simplefilter("ignore")
                return gro(x1, target)
        return {"vit-explain rollout": lambda x1, _: ro(x1), "vit-explain grad_rollout": grad_rollout}

    def grad_cam():
        (pgc,) = import_from(args.grad_cam, "pytorch_grad_cam")
        gh = cfg["img_size"] // cfg["patch_size"]
        ref = copy.deepcopy(model)
        cam = pgc.GradCAM(model=ref, target_layers=[ref.blocks[-1].norm1],
                          reshape_transform=lambda t: t[:, 1:].reshape(t.shape[0], gh, gh, -1).permute(0, 3, 1, 2))
        return {"pytorch-grad-cam GradCAM": lambda x1, _: cam(input_tensor=x1, targets=None)}

    def chefer():
        vit_new, vit_lrp, gen = import_from(args.chefer, "baselines.ViT.ViT_new", "baselines.ViT.ViT_LRP",
                                            "baselines.ViT.ViT_explanation_generator")
        kw = {k: cfg[k] for k in ("img_size", "patch_size", "num_classes", "embed_dim", "depth", "num_heads")}
        ref = vit_new.VisionTransformer(norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), qkv_bias=True, **kw)
        ref_lrp = vit_lrp.VisionTransformer(qkv_bias=True, **kw)
        ref_lrp.norm.eps = 1e-6
        for m in (ref, ref_lrp):
            m.load_state_dict(model.state_dict(), strict=True)
            m.eval()
        base, lrp_gen = gen.Baselines(ref), gen.LRP(ref_lrp)

        def gae(x1, _):  # Transformer-MM-Explainability's ViT rule on the reference model's own hooks
            out = ref(x1, register_hook=True)
            ref.zero_grad()
            out[0, out.argmax()].backward()
            r = torch.eye(ref.blocks[0].attn.get_attention_map().shape[-1])
            for blk in ref.blocks:
                cam = (blk.attn.get_attn_gradients() * blk.attn.get_attention_map())[0].clamp(min=0).mean(0)
                r = r + cam @ r
            return r[0, 1:]

        def with_cuda_noop(fn):
            def run(x1, _):
                with cuda_noop():
                    return fn(x1)
            return run
        return {"chefer LRP transformer_attribution":
                with_cuda_noop(lambda x1: lrp_gen.generate_LRP(x1, method="transformer_attribution")),
                "chefer generate_cam_attn": with_cuda_noop(base.generate_cam_attn),
                "chefer generate_rollout": lambda x1, _: base.generate_rollout(x1), "chefer GAE (ViT_new hooks)": gae}

    sys.path.extend(str(d) for d in args.deps or [])
    for label, make in (("vit-explain", vit_explain), ("grad-cam", grad_cam), ("chefer", chefer)):
        try:
            runners.update(make())
        except Skip as e:
            log.warning("skipping %s: %s", label, e)
    return runners


def reference_timing(args) -> list[str]:
    from parity import CONFIGS, build_model
    cfg, n = CONFIGS["vitb16"], args.ref_images
    model = build_model(cfg, args.seed)  # timm ViT-B/16 at 224, random (seeded) weights
    torch.manual_seed(100 + args.seed)
    x = torch.randn(n, 3, cfg["img_size"], cfg["img_size"])
    runners = reference_runners(args, model)
    if not runners:
        log.warning("no reference could be loaded; nothing to compare")
        return []
    singles = [x[i:i + 1].clone().requires_grad_(True) for i in range(n)]
    log.info("reference timing: ViT-B/16 at 224, %d images, %d references", n, len(runners))
    a = timed(lambda: [bare(model, xi) for xi in singles], args.reps) / n
    with torch.no_grad():
        preds = model(x).argmax(1).tolist()
    for fn in runners.values():  # warm-up, one image
        fn(x[:1], preds[0])
    per_ref = {k: [] for k in runners}
    for _ in range(args.reps):  # references one after another per image
        spent = dict.fromkeys(runners, 0.0)
        for i in range(n):
            for k, fn in runners.items():
                t = time.perf_counter()
                fn(x[i:i + 1], preds[i])
                spent[k] += time.perf_counter() - t
        for k, v in spent.items():
            per_ref[k].append(v / n)
    per_ref = {k: statistics.median(v) for k, v in per_ref.items()}
    b = sum(per_ref.values())
    c = timed(lambda: run_methods(model, x, SEVEN), args.reps) / n
    missing = 7 - len(runners)
    lines = [f"### References vs `run_methods`: ViT-B/16 at 224, {n} images, CPU ({torch.get_num_threads()} threads, "
             f"torch {torch.__version__}), median of {args.reps}", "",
             "| what | s per image | × (a) |", "|---|---|---|",
             f"| (a) bare fwd+bwd, fused attention, batch of one | {a:.3f} | 1.00 |"]
    lines += [f"| (b) {k} | {v:.3f} | {v / a:.2f} |" for k, v in per_ref.items()]
    lines += [f"| **(b) references, total{f' ({missing} skipped)' if missing else ''}** | {b:.3f} | {b / a:.2f} |",
              f"| **(c) ours: `run_methods`, seven methods, batch of {n}** | {c:.3f} | {c / a:.2f} |", "",
              f"(b)/(a) = {b / a:.2f}; (b)/(c) = {b / c:.2f}"]
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vit_small_patch16_224")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--captum-images", type=int, default=4)
    p.add_argument("--memory", action="store_true")
    p.add_argument("--write", default=None, help="append the tables to this markdown file")
    p.add_argument("--chefer", type=Path, help="checkout of hila-chefer/Transformer-Explainability")
    p.add_argument("--vit-explain", type=Path, help="checkout of jacobgil/vit-explain")
    p.add_argument("--grad-cam", type=Path, help="checkout of jacobgil/pytorch-grad-cam")
    p.add_argument("--deps", type=Path, action="append", help="dir with the references' dependencies")
    p.add_argument("--ref-images", type=int, default=8)
    p.add_argument("--refs-only", action="store_true", help="only the reference comparison")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    lines = []
    if not a.refs_only:
        lines = throughput_lines(a)
    if a.chefer or a.vit_explain or a.grad_cam:
        lines += ([""] if lines else []) + reference_timing(a)
    text = "\n".join(lines)
    print(text)
    if a.write:
        with open(a.write, "a") as fh:
            fh.write("\n" + text + "\n")
    return 0


def throughput_lines(a) -> list[str]:
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
    return lines


if __name__ == "__main__":
    sys.exit(main())
