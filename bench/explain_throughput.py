"""Explanation throughput: images/s per method beside a bare forward + backward (CPU or CUDA).

    .venv/bin/python bench/explain_throughput.py [--model vit_small_patch16_224] [--batch 32] [--reps 3]
                                                 [--captum-images 4] [--memory] [--write docs/benchmarks.md]
                                                 [--device cpu|cuda] [--precision fp32 [bf16]] [--img-size N]
                                                 [--agreement] [--json PATH]

* ``--device`` / ``--precision``: where and at which precision(s), one table each (``bf16``: autocast,
  as the runner's ``--precision bf16``; ``chefer_lrp`` then runs in float32 as in a run, unless
  ``--force-bf16``; a row "chefer_lrp (forced bf16)" gives its bf16 cost).
  On CUDA every timing is bracketed by ``torch.cuda.synchronize()``.
* ``--agreement``: bf16 against fp32 on the same images (every method forced to bf16), per method:
  ``max_scaled_diff`` = max over images of max|bf16 - fp32| / max|fp32| of the image's map,
  ``argmax_agreement`` = share of images whose map's argmax (the pointing-game point) is the same
  token/pixel, and the share of images whose explained class is the same.
* ``--json``: the rows (and agreement) as JSON, for bench/gpu_table.py.

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
import json
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

from engine.common.precision import autocast  # noqa: E402
from engine.explain import METHODS, run_methods  # noqa: E402

log = logging.getLogger("bench")
SIX = ["attention", "rollout", "grad_rollout", "chefer_gae", "gradcam_attn", "gradcam"]


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, reps: int, device="cpu") -> float:
    fn()  # warm-up
    _sync(device)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bare(model, x, precision: str = "fp32"):
    with autocast(x.device, precision):
        logits = model(x)
    target = logits.argmax(1)
    torch.autograd.grad(logits.float().gather(1, target[:, None]).sum(), x)


CAPTUM = ["integrated_gradients", "occlusion", "saliency", "smoothgrad"]


def make_model(model_name: str, img_size: int | None, device: str):
    import timm
    torch.manual_seed(0)
    kw = {"img_size": img_size} if img_size else {}
    model = timm.create_model(model_name, pretrained=False, num_classes=10, **kw).eval().to(device)
    return model, img_size or model.pretrained_cfg["input_size"][-1]


def throughput(model_name: str, batch: int, reps: int, captum_images: int, device: str = "cpu",
               precision: str = "fp32", img_size: int | None = None, force_bf16: bool = False
               ) -> list[tuple[str, int, float]]:
    model, size = make_model(model_name, img_size, device)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    over = {m: precision for m in METHODS} if force_bf16 else None

    def run(ms, xx):
        return run_methods(model, xx, ms, precision=precision, method_precision=over)
    rows = []
    xg = x.clone().requires_grad_(True)
    rows.append(("bare fwd+bwd (fused attention)", batch, timed(lambda: bare(model, xg, precision), reps, device)))
    for m in SIX + ["chefer_lrp"]:
        rows.append((m, batch, timed(lambda m=m: run([m], x), reps, device)))
    rows.append(("six trace methods together", batch, timed(lambda: run(SIX, x), reps, device)))
    rows.append(("six + chefer_lrp together", batch, timed(lambda: run(SIX + ["chefer_lrp"], x), reps, device)))
    if precision == "bf16" and not force_bf16:  # a run keeps chefer_lrp in float32; its bf16 cost, for the record
        rows.append(("chefer_lrp (forced bf16)", batch,
                     timed(lambda: run_methods(model, x, ["chefer_lrp"], precision="bf16",
                                               method_precision={"chefer_lrp": "bf16"}), reps, device)))
    xc = x[:captum_images]
    for m in CAPTUM:
        rows.append((m, captum_images, timed(lambda m=m: run([m], xc), 1, device)))
    return rows


def agreement(model_name: str, batch: int, captum_images: int, device: str = "cpu", img_size: int | None = None,
              methods: list[str] | None = None) -> dict[str, dict]:
    """bf16 against fp32 maps of every method on the same images (bf16 forced for every method)."""
    model, size = make_model(model_name, img_size, device)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(2)).to(device)
    out = {}
    for m in methods or SIX + ["chefer_lrp"] + CAPTUM:
        xx = x[:captum_images] if METHODS[m].kind == "model" else x
        a, _, ta = run_methods(model, xx, [m], precision="fp32")
        b, _, tb = run_methods(model, xx, [m], targets=ta, precision="bf16", method_precision={m: "bf16"})
        with torch.no_grad(), autocast(xx.device, "bf16"):
            tfree = model(xx).argmax(1)
        a, b = a[m].float().flatten(1).cpu(), b[m].float().flatten(1).cpu()
        scale = a.abs().amax(dim=1).clamp(min=1e-12)
        out[m] = {"images": int(a.shape[0]),
                  "max_scaled_diff": float(((a - b).abs().amax(dim=1) / scale).max()),
                  "argmax_agreement": float((a.argmax(1) == b.argmax(1)).float().mean()),
                  "target_agreement": float((ta.cpu() == tfree.cpu()).float().mean())}
    return out


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


def main(argv=None) -> int:
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
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", choices=["fp32", "bf16"], nargs="+", default=["fp32"])
    p.add_argument("--force-bf16", action="store_true", help="bf16 for every method (chefer_lrp too)")
    p.add_argument("--img-size", type=int, default=None, help="input size (default: the model's)")
    p.add_argument("--agreement", action="store_true", help="bf16 vs fp32 maps per method (see above)")
    p.add_argument("--json", default=None, help="write the rows and agreement here as JSON")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    lines, payload = [], {"model": a.model, "batch": a.batch, "device": a.device, "torch": torch.__version__,
                          "runs": {}}
    if a.device.startswith("cuda"):
        payload["gpu"] = torch.cuda.get_device_name(a.device)
    for prec in [] if a.refs_only else a.precision:
        rows = throughput(a.model, a.batch, a.reps, a.captum_images, a.device, prec, a.img_size, a.force_bf16)
        payload["runs"][prec] = [{"what": n, "images": k, "seconds": t} for n, k, t in rows]
        lines += ([""] if lines else []) + throughput_lines(a, rows, prec)
    if a.agreement:
        payload["agreement"] = agreement(a.model, a.batch, a.captum_images, a.device, a.img_size)
        lines += ["", f"### bf16 vs fp32 maps: {a.model}, random weights, {a.device}", "",
                  "| method | images | max-scaled max diff | argmax agreement | target agreement |",
                  "|---|---|---|---|---|"]
        lines += [f"| {m} | {v['images']} | {v['max_scaled_diff']:.2e} | {v['argmax_agreement']:.3f} | "
                  f"{v['target_agreement']:.3f} |" for m, v in payload["agreement"].items()]
    if a.json:
        Path(a.json).write_text(json.dumps(payload, indent=1))
    if a.chefer or a.vit_explain or a.grad_cam:
        lines += ([""] if lines else []) + reference_timing(a)
    text = "\n".join(lines)
    print(text)
    if a.write:
        with open(a.write, "a") as fh:
            fh.write("\n" + text + "\n")
    return 0


def throughput_lines(a, rows, precision: str) -> list[str]:
    base = rows[0][2] / rows[0][1]
    where = (f"{torch.cuda.get_device_name(a.device)}" if a.device.startswith("cuda") else
             f"CPU ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    lines = [f"### Explanation throughput: {a.model}, batch {a.batch}, {precision}, {where}, "
             f"torch {torch.__version__})", "",
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
