"""bf16 against fp32 on the trained models of a results database: do the maps and scores agree?

    python3 bench/precision_agreement.py --db DB [--device cuda] [--images 32] [--n-steps 16] [--json PATH]

For every model of ``DB`` whose dataset root is readable, on the first ``--images`` images it scored, and
for every method variant it was explained with: maps at fp32 and at bf16 (every method forced to bf16,
``chefer_lrp`` too, on the fp32 explained classes), then per method over all models:

* ``pg agreement``: share of (image, region) pairs whose pointing-game value is the same at bf16 and fp32
  (regions as the database scored them; NaN pairs -- empty regions -- left out);
* ``max-scaled diff``: max over images of max|bf16 - fp32| / max|fp32| of the image's map (token grid);
* ``max |dAUC|``: insertion and deletion AUC (``--n-steps``), bf16 maps with bf16 forwards against fp32
  maps with fp32 forwards -- the difference a run's precision makes to a faithfulness score.

Verdict per method: ``bf16 ok`` when pg agreement >= 99 % and max |dAUC| <= 2e-3 (the issue's rule for
choosing the default precision per stage), else ``keep fp32``.  Prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.data import DatasetSpec, ImageDataset, collate_samples, load_records  # noqa: E402
from engine.explain import run_methods, upsample_maps  # noqa: E402
from engine.metrics import METRICS  # noqa: E402
from engine.models import load_checkpoint, normalise  # noqa: E402

PG_MIN, DAUC_MAX = 0.99, 2e-3


def _models(db: Path) -> list[dict]:
    import duckdb
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("""
            SELECT m.model_id, m.checkpoint, d.spec, d.root,
                   (SELECT list(DISTINCT e.method || '\t' || e.method_params) FROM explanations e
                     WHERE e.model_id = m.model_id) AS variants,
                   (SELECT list(DISTINCT s.image_id ORDER BY s.image_id) FROM scores s
                     WHERE s.model_id = m.model_id) AS images
            FROM models m JOIN datasets d USING (dataset_id) ORDER BY m.model_id""").fetchall()
    return [{"model_id": r[0], "checkpoint": r[1], "spec": json.loads(r[2]), "root": r[3],
             "variants": sorted(v.split("\t") for v in (r[4] or [])), "images": list(r[5] or [])} for r in rows]


def _batch(m: dict, n_images: int):
    spec = DatasetSpec.from_dict({**m["spec"], "root": m["root"]})
    records, classes = load_records(spec)
    wanted = set(m["images"][:n_images])
    ds = ImageDataset(spec, records=[r for r in records if r.image_id in wanted], classes=classes)
    return collate_samples([ds[i] for i in range(len(ds))])


def compare_model(m: dict, device: str, n_images: int, n_steps: int) -> dict[str, dict]:
    model, info, _ = load_checkpoint(m["checkpoint"])
    model = model.to(device).eval()
    batch = _batch(m, n_images)
    x = normalise(batch["image"].to(device), info)
    out = {}
    for name, params_json in m["variants"]:
        params = json.loads(params_json)
        a, _, t = run_methods(model, x, [name], params={name: params}, precision="fp32")
        b, _, _ = run_methods(model, x, [name], targets=t, params={name: params}, precision="bf16",
                              method_precision={name: "bf16"})
        a, b = a[name].float().cpu(), b[name].float().cpu()
        scale = a.flatten(1).abs().amax(1).clamp(min=1e-12)
        diff = float(((a - b).flatten(1).abs().amax(1) / scale).max())
        ua, ub = upsample_maps(a, tuple(x.shape[-2:])), upsample_maps(b, tuple(x.shape[-2:]))
        same = total = 0
        for reg in batch["regions"].values():
            pa, pb = METRICS["pointing_game"](ua, reg), METRICS["pointing_game"](ub, reg)
            ok = ~(np.isnan(pa) | np.isnan(pb))
            same += int((pa[ok] == pb[ok]).sum())
            total += int(ok.sum())
        dauc = {}
        for metric in ("insertion_auc", "deletion_auc"):
            fa = METRICS[metric](ua.to(device), model=model, images=x, targets=t, n_steps=n_steps, precision="fp32")
            fb = METRICS[metric](ub.to(device), model=model, images=x, targets=t, n_steps=n_steps, precision="bf16")
            dauc[metric] = float(np.max(np.abs(fa - fb)))
        key = name if params_json in ("{}", "") else f"{name} {params_json}"
        out[key] = {"images": int(x.shape[0]), "pg_same": same, "pg_total": total, "max_scaled_diff": diff, **dauc}
    return out


def summarise(per_model: dict[str, dict[str, dict]]) -> dict[str, dict]:
    agg: dict[str, dict] = {}
    for res in per_model.values():
        for meth, r in res.items():
            a = agg.setdefault(meth, {"models": 0, "images": 0, "pg_same": 0, "pg_total": 0, "max_scaled_diff": 0.0,
                                      "insertion_auc": 0.0, "deletion_auc": 0.0})
            a["models"] += 1
            for k in ("images", "pg_same", "pg_total"):
                a[k] += r[k]
            for k in ("max_scaled_diff", "insertion_auc", "deletion_auc"):
                a[k] = max(a[k], r[k])
    for a in agg.values():
        a["pg_agreement"] = a["pg_same"] / a["pg_total"] if a["pg_total"] else float("nan")
        a["verdict"] = ("bf16 ok" if a["pg_agreement"] >= PG_MIN and max(a["insertion_auc"], a["deletion_auc"])
                        <= DAUC_MAX else "keep fp32")
    return agg


def lines(agg: dict[str, dict], device: str) -> list[str]:
    out = [f"### bf16 vs fp32 on the database's models ({device})", "",
           "| method | models | images | pg agreement | max-scaled diff | max abs dAUC ins | max abs dAUC del | "
           "verdict |", "|---|---|---|---|---|---|---|---|"]
    for m, a in sorted(agg.items()):
        out.append(f"| {m} | {a['models']} | {a['images']} | {100 * a['pg_agreement']:.1f} % ({a['pg_same']}/"
                   f"{a['pg_total']}) | {a['max_scaled_diff']:.1e} | {a['insertion_auc']:.1e} | "
                   f"{a['deletion_auc']:.1e} | {a['verdict']} |")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=32, help="first scored images per model")
    p.add_argument("--n-steps", type=int, default=16, help="insertion / deletion steps")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    per_model, skipped = {}, {}
    for m in _models(Path(a.db)):
        if not m["variants"] or not Path(m["checkpoint"]).exists():
            skipped[m["model_id"]] = "no maps or no checkpoint"
            continue
        try:
            per_model[m["model_id"]] = compare_model(m, a.device, a.images, a.n_steps)
        except (OSError, ValueError) as exc:  # a dataset root or checkpoint not readable here
            skipped[m["model_id"]] = f"{type(exc).__name__}: {exc}"[:200]
    agg = summarise(per_model)
    print("\n".join(lines(agg, a.device)))
    for mid, why in skipped.items():
        print(f"skipped {mid}: {why}")
    if a.json:
        Path(a.json).write_text(json.dumps({"device": a.device, "per_model": per_model, "methods": agg,
                                            "skipped": skipped}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
