"""Parity of engine.explain methods with their public reference implementations.

The references are never copied into this repository: pass the paths of their checkouts and they are
put on ``sys.path`` at run time (see bench/README.md).  Every comparison runs the reference on the same
weights (random, scaled so that attention is peaky) and the same images as ours, batch of one on the
reference side (as the references require), our batched call on ours.

    .venv/bin/python bench/parity.py --chefer PATH --vit-explain PATH --grad-cam PATH --deps DIR

Rows: ``ok``/``FAIL`` are gated (max |ours - ref| / max |ref| <= 1e-5; exit status 1 on any FAIL);
``ref-bug`` rows run a reference's documented bug as shipped and ``diag`` rows are diagnostics
(both informational).  References with a documented bug are also run with the bug fixed by a textual
edit of the reference's own source at run time (listed in the row's config) -- those rows are gated.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import inspect
import logging
import math
import subprocess
import sys
import textwrap
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.explain import capture_trace, explain, lrp  # noqa: E402

log = logging.getLogger("parity")
TOL = 1e-5
CONFIGS = {
    "small": dict(img_size=32, patch_size=8, embed_dim=48, depth=3, num_heads=3, num_classes=10, n_img=4),
    "vitb16": dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=1000, n_img=2),
}
ROWS: list[dict] = []


class Skip(Exception):
    """An expected reason not to run a row (reference not given, dependency missing...)."""


# ---------------------------------------------------------------- helpers
def record(method, ref, config, ours, theirs, kind="gate", note=""):
    ours, theirs = (torch.as_tensor(t.detach() if torch.is_tensor(t) else np.asarray(t), dtype=torch.float64)
                    .reshape(-1) for t in (ours, theirs))
    d = (ours - theirs).abs().max().item()
    rel = d / max(theirs.abs().max().item(), 1e-30)
    status = ("ok" if rel <= TOL else "FAIL") if kind == "gate" else kind
    ROWS.append(dict(method=method, ref=ref, config=config, abs=d, rel=rel, status=status, note=note))


def skip(method, ref, config, why):
    log.warning("skip %s vs %s [%s]: %s", method, ref, config, why)
    ROWS.append(dict(method=method, ref=ref, config=config, abs=math.nan, rel=math.nan, status="skip", note=why))


def import_from(root, *names):
    if root is None:
        raise Skip("reference path not given")
    if not Path(root).is_dir():
        raise Skip(f"{root} is not a directory")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return [importlib.import_module(n) for n in names]
    except ImportError as e:
        raise Skip(f"cannot import the reference ({e}); missing dependencies go in --deps") from None


def commit_of(root):
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def patched(fn, edits):
    """The reference function ``fn`` re-compiled from its own source with textual ``edits`` applied."""
    src = textwrap.dedent(inspect.getsource(fn))
    for old, new in edits:
        if old not in src:
            raise Skip(f"{fn.__qualname__}: text {old!r} not found; the reference changed")
        src = src.replace(old, new)
    ns = dict(fn.__globals__)
    exec(compile(src, f"<patched {fn.__module__}.{fn.__qualname__}>", "exec"), ns)
    return ns[fn.__name__]


@contextlib.contextmanager
def cuda_noop():
    """Chefer's generators call ``.cuda()`` unconditionally; everything here runs on the CPU."""
    saved = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda = saved


def build_model(cfg, seed):
    """timm ViT with larger-than-default random weights (peaky attention, non-trivial gradients)."""
    torch.manual_seed(seed)
    m = VisionTransformer(img_size=cfg["img_size"], patch_size=cfg["patch_size"], embed_dim=cfg["embed_dim"],
                          depth=cfg["depth"], num_heads=cfg["num_heads"], num_classes=cfg["num_classes"],
                          qkv_bias=True)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name in ("cls_token", "pos_embed"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / math.sqrt(p[0].numel())))
            elif name.endswith("weight"):  # LayerNorm gains
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return m.eval()


def unfused_copy(model):
    m = copy.deepcopy(model)
    for b in m.blocks:
        b.attn.fused_attn = False  # the probabilities must exist for attn_drop hooks
    return m


def attn_and_grads(model, x1, target):
    """Per-block attention probabilities and d logit[target] / d attention, forward order (batch of one)."""
    attns = []
    hs = [b.attn.attn_drop.register_forward_hook(lambda _m, _i, o: attns.append(o)) for b in model.blocks]
    try:
        out = model(x1)
    finally:
        for h in hs:
            h.remove()
    grads = torch.autograd.grad(out[0, target], attns)
    return [a.detach() for a in attns], [g.detach() for g in grads]


def minmax(t):
    t = t.reshape(t.shape[0], -1)
    lo, hi = t.min(1, keepdim=True).values, t.max(1, keepdim=True).values
    return (t - lo) / (hi - lo)


def per_max(t):
    t = t.reshape(t.shape[0], -1)
    return t / t.max(1, keepdim=True).values


# ---------------------------------------------------------------- comparisons
def chefer_rows(args, name, cfg, model, x, preds):
    vit_new, vit_lrp, gen = import_from(args.chefer, "baselines.ViT.ViT_new", "baselines.ViT.ViT_LRP",
                                        "baselines.ViT.ViT_explanation_generator")
    kw = dict(img_size=cfg["img_size"], patch_size=cfg["patch_size"], num_classes=cfg["num_classes"],
              embed_dim=cfg["embed_dim"], depth=cfg["depth"], num_heads=cfg["num_heads"], qkv_bias=True)
    sd = model.state_dict()
    ref = vit_new.VisionTransformer(norm_layer=partial(nn.LayerNorm, eps=1e-6), **kw)
    ref_lrp = vit_lrp.VisionTransformer(**kw)
    ref_lrp.norm.eps = 1e-6  # ViT_LRP builds its final LayerNorm with eps 1e-5, timm ViTs use 1e-6
    for m in (ref, ref_lrp):
        m.load_state_dict(sd, strict=True)
        m.eval()
    base, lrp_gen = gen.Baselines(ref), gen.LRP(ref_lrp)
    gh = cfg["img_size"] // cfg["patch_size"]
    ours = explain(model, x, ["rollout", "gradcam_attn", "chefer_lrp"])
    cam_attn = base.generate_cam_attn
    if gh != 14:  # the reference hard-codes the 14 x 14 grid of ViT-B/16 at 224
        cam_attn = partial(patched(gen.Baselines.generate_cam_attn, [("14, 14", f"{gh}, {gh}")]), base)
    ref_out = {k: [] for k in ("roll", "cam", "lrp0", "lrp1", "r_attn", "grads", "lrp0_eps")}
    ours_one = {k: [] for k in ("lrp0", "lrp1", "r_attn", "grads", "norow0", "norow1")}
    with cuda_noop():
        for i in range(len(x)):
            xi = x[i:i + 1]
            ref_out["roll"].append(base.generate_rollout(xi, start_layer=0).detach())
            ref_out["cam"].append(cam_attn(xi).detach())
            ref_out["lrp0_eps"].append(lrp_gen.generate_LRP(xi * (1 + 1e-6), start_layer=0).detach())
            ref_out["lrp0"].append(lrp_gen.generate_LRP(xi, method="transformer_attribution", start_layer=0).detach())
            ref_out["r_attn"].append(torch.cat([b.attn.get_attn_cam().detach() for b in ref_lrp.blocks]))
            ref_out["grads"].append(torch.cat([b.attn.get_attn_gradients().detach() for b in ref_lrp.blocks]))
            ref_out["lrp1"].append(lrp_gen.generate_LRP(xi, method="transformer_attribution", start_layer=1).detach())
            for k, v in our_lrp_single(model, xi).items():
                ours_one[k].append(v)
    ref_out, ours_one = ({k: torch.cat(v) for k, v in d.items()} for d in (ref_out, ours_one))
    record("rollout", "chefer generate_rollout", f"{name} mean d=0", ours["rollout"], ref_out["roll"])
    record("gradcam_attn", "chefer generate_cam_attn", f"{name} min-max both",
           minmax(ours["gradcam_attn"]), ref_out["cam"])
    lrp_ref = "chefer generate_LRP"
    for s in (0, 1):
        record("chefer_lrp", lrp_ref, f"{name} start_layer={s}, batch of one", ours_one[f"lrp{s}"], ref_out[f"lrp{s}"])
    record("chefer_lrp", lrp_ref, f"{name} start_layer=0, ours batched", ours["chefer_lrp"], ref_out["lrp0"],
           kind="diag", note="batching changes float rounding; LRP amplifies it, see next row")
    record("chefer_lrp", lrp_ref, f"{name} ref(x*(1+1e-6)) vs ref(x)", ref_out["lrp0_eps"], ref_out["lrp0"],
           kind="diag", note="conditioning of the reference itself")
    record("chefer_lrp", "chefer Attention.attn_cam", f"{name} R_A all blocks", ours_one["r_attn"],
           ref_out["r_attn"], kind="diag")
    record("chefer_lrp", "chefer Attention.attn_gradients", f"{name} dA all blocks", ours_one["grads"],
           ref_out["grads"], kind="diag")
    for s in (0, 1):
        record("chefer_lrp", lrp_ref, f"{name} s={s}, ours w/o row norm", ours_one[f"norow{s}"], ref_out[f"lrp{s}"],
               kind="diag", note="our relevances, rollout without row normalisation")


def our_lrp_single(model, xi):
    """Our maps for one image plus the relevance pass's internals (engine.explain.lrp) for diagnostics."""
    maps = [explain(model, xi, ["chefer_lrp"], params={"chefer_lrp": {"start_layer": s}})["chefer_lrp"]
            for s in (0, 1)]
    store, handles = lrp.record_activations(model)
    try:
        trace = capture_trace(model, xi)
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        cams = lrp.attention_relevances(model, store, trace.attentions, trace.targets, trace.logits.shape[1])
    out = dict(lrp0=maps[0], lrp1=maps[1], r_attn=torch.cat(cams), grads=torch.cat(trace.attention_grads))
    eye = torch.eye(cams[0].shape[-1])
    for s in (0, 1):  # I + Abar multiplied without normalising rows (ViT_LRP.compute_rollout_attention)
        joint = eye[None]
        for g, c in list(zip(trace.attention_grads, cams))[s:]:
            joint = torch.bmm((g * c).clamp(min=0).mean(1) + eye, joint)
        out[f"norow{s}"] = joint[:, 0, 1:]
    return out


def vit_explain_rows(args, name, cfg, model, x, preds):
    vr, vg = import_from(args.vit_explain, "vit_rollout", "vit_grad_rollout")
    keepdim = ("a / a.sum(dim=-1)", "a / a.sum(dim=-1, keepdim=True)")  # issue #16: columns -> rows
    rollout_fixed = patched(vr.rollout, [keepdim])
    for fusion in ("mean", "max"):
        for d in (0.0, 0.9):
            ours = explain(model, x, ["rollout"], params={"rollout": {"head_fusion": fusion, "discard_ratio": d}})
            shipped, fixed = [], []
            ro = vr.VITAttentionRollout(unfused_copy(model), head_fusion=fusion, discard_ratio=d)
            for i in range(len(x)):
                shipped.append(torch.as_tensor(ro(x[i:i + 1])))
                fixed.append(torch.as_tensor(rollout_fixed(ro.attentions, d, fusion)))
            ours = per_max(ours["rollout"])
            cfg_s = f"{name} {fusion} d={d}"
            record("rollout", "vit-explain rollout", cfg_s + " keepdim fixed", ours, torch.stack(fixed),
                   note="both divided by their max")
            record("rollout", "vit-explain rollout", cfg_s + " as shipped", ours, torch.stack(shipped),
                   kind="ref-bug", note="issue #16: column sums")
    # gradient rollout: attention/gradient pairs taken by our own hooks on a copy of the model
    pairs = [attn_and_grads(unfused_copy(model), x[i:i + 1], int(preds[i])) for i in range(len(x))]
    spare_cls = ("#indices = indices[indices != 0]", "indices = indices[indices != 0]")
    variants = {  # name: (function, gradients in backward order?, kind, note)
        "keepdim fixed": (patched(vg.grad_rollout, [keepdim]), False, "gate", ""),
        "keepdim fixed, CLS spared": (patched(vg.grad_rollout, [keepdim, spare_cls]), False, "gate",
                                      "their commented-out line restored"),
        "keepdim fixed, CLS not spared": (patched(vg.grad_rollout, [keepdim]), False, "diag",
                                          "documented difference: ours spares CLS->CLS"),
        "keepdim fixed, backward order": (patched(vg.grad_rollout, [keepdim]), True, "ref-bug", "issue #6"),
        "shipped fn, paired grads": (vg.grad_rollout, False, "ref-bug", "issue #16"),
        "shipped fn, backward order": (vg.grad_rollout, True, "ref-bug", "issues #6 + #16"),
    }
    for d in (0.0, 0.9):
        ours = per_max(explain(model, x, ["grad_rollout"], params={"grad_rollout": {"discard_ratio": d}})
                       ["grad_rollout"])
        for vname, (fn, backward_order, kind, note) in variants.items():
            if (d == 0.0) == ("CLS" in vname):
                continue
            theirs = [torch.as_tensor(fn(a, g[::-1] if backward_order else g, d)) for a, g in pairs]
            record("grad_rollout", "vit-explain grad_rollout", f"{name} d={d} {vname}", ours, torch.stack(theirs),
                   kind=kind, note=note)
        cls = vg.VITAttentionGradRollout(unfused_copy(model), discard_ratio=d)
        with warnings.catch_warnings():  # "non-full backward hook" warnings: that is the point of this row
            warnings.simplefilter("ignore")
            theirs = [torch.as_tensor(cls(x[i:i + 1], int(preds[i]))) for i in range(len(x))]
        record("grad_rollout", "vit-explain VITAttentionGradRollout", f"{name} d={d} class as shipped", ours,
               torch.stack(theirs), kind="ref-bug", note="module backward hook: see README")


def grad_cam_rows(args, name, cfg, model, x, preds):
    pgc, img = import_from(args.grad_cam, "pytorch_grad_cam", "pytorch_grad_cam.utils.image")
    gh = cfg["img_size"] // cfg["patch_size"]

    def reshape_transform(t):  # pytorch-grad-cam's ViT recipe: drop CLS, tokens -> (B, C, gh, gw)
        return t[:, 1:, :].reshape(t.shape[0], gh, gh, t.shape[2]).permute(0, 3, 1, 2)

    ref_model = copy.deepcopy(model)
    layer = ref_model.blocks[-1].norm1
    cam = pgc.GradCAM(model=ref_model, target_layers=[layer], reshape_transform=reshape_transform)
    scaled = cam(input_tensor=x, targets=None)
    ag = cam.activations_and_grads
    acts, grads = ag.activations[0].numpy(), ag.gradients[0].numpy()
    raw = np.maximum(cam.get_cam_image(x, layer, None, acts, grads), 0)  # their cam before scale_cam_image
    ours = explain(model, x, ["gradcam"])["gradcam"].numpy()
    record("gradcam", "pytorch-grad-cam GradCAM", f"{name} raw (pre-scaling)", ours, raw)
    size = (cfg["img_size"], cfg["img_size"])
    ours_scaled = cam.aggregate_multi_layers([img.scale_cam_image(ours, size)[:, None, :]])
    record("gradcam", "pytorch-grad-cam GradCAM", f"{name} their scaling on ours", ours_scaled, scaled)
    ag.release()


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chefer", type=Path, help="checkout of hila-chefer/Transformer-Explainability")
    ap.add_argument("--vit-explain", type=Path, help="checkout of jacobgil/vit-explain")
    ap.add_argument("--grad-cam", type=Path, help="checkout of jacobgil/pytorch-grad-cam (or a dir holding "
                                                  "the pytorch_grad_cam package)")
    ap.add_argument("--deps", type=Path, action="append", default=[],
                    help="extra dirs with the references' dependencies (einops, cv2, ttach, sklearn...)")
    ap.add_argument("--configs", default="small,vitb16", type=lambda v: v.split(","),
                    help=f"comma list from {sorted(CONFIGS)}")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    sys.path.extend(str(d) for d in args.deps)
    for label, root in (("chefer", args.chefer), ("vit-explain", args.vit_explain), ("grad-cam", args.grad_cam)):
        if root is not None:
            log.info("%s: %s @ %s", label, root, commit_of(root))
    torch.set_grad_enabled(True)
    sections = (("chefer", "chefer_lrp/rollout/gradcam_attn", chefer_rows),
                ("vit-explain", "rollout/grad_rollout", vit_explain_rows),
                ("grad-cam", "gradcam", grad_cam_rows))
    if set(args.configs) - set(CONFIGS):
        ap.error(f"unknown configs {sorted(set(args.configs) - set(CONFIGS))}")
    for name in args.configs:
        cfg = CONFIGS[name]
        model = build_model(cfg, args.seed)
        torch.manual_seed(100 + args.seed)
        x = torch.randn(cfg["n_img"], 3, cfg["img_size"], cfg["img_size"])
        with torch.no_grad():
            preds = model(x).argmax(1)
        for label, methods, fn in sections:
            t0 = time.time()
            try:
                fn(args, name, cfg, model, x, preds)
                log.info("%s [%s] done in %.1fs", label, name, time.time() - t0)
            except Skip as e:
                skip(methods, label, name, str(e))
    w = [max(len(str(r[k])) for r in ROWS) for k in ("method", "ref", "config")]
    print(f"\n{'method':{w[0]}}  {'reference':{w[1]}}  {'config':{w[2]}}  {'max abs':>9}  {'max rel':>9}  ok?")
    for r in ROWS:
        print(f"{r['method']:{w[0]}}  {r['ref']:{w[1]}}  {r['config']:{w[2]}}  {r['abs']:9.2e}  {r['rel']:9.2e}  "
              f"{r['status']}{'  (' + r['note'] + ')' if r['note'] else ''}")
    failed = [r for r in ROWS if r["status"] == "FAIL"]
    print(f"\n{len(failed)} gated comparison(s) above {TOL:g} relative; "
          f"{sum(r['status'] == 'skip' for r in ROWS)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
