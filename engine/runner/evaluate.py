"""Explain and score one model on one split: predictions, maps and per-image scores as DataFrames.

One forward + backward per batch (the trace) serves every trace method (Captum methods add their
own passes); every map is upsampled
once with the shared helper and scored against every region of the batch with every metric.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..data import ImageDataset, collate_samples
from ..explain import METHODS, run_methods, upsample_maps
from ..metrics import METRICS
from ..models import ModelInfo, normalise
from ..store import canonical_json

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    predictions: pd.DataFrame
    explanations: pd.DataFrame
    scores: pd.DataFrame
    curves: pd.DataFrame
    failures: list[str] = field(default_factory=list)


def evaluate_model(model: torch.nn.Module, info: ModelInfo, ds: ImageDataset, *, run_id: str, dataset_id: str,
                   model_id: str, methods: dict[str, dict], metrics: dict[str, dict],
                   device: str = "cpu", batch_size: int = 32, progress: bool = True) -> EvalResult:
    """Predict, explain (predicted class) and score every image of ``ds``."""
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; registered: {sorted(METHODS)}")
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"unknown metric {m!r}; registered: {sorted(METRICS)}")
        if METRICS[m].kind not in ("localisation", "faithfulness"):
            raise ValueError(f"metric {m!r} ({METRICS[m].kind}) is run per model, not per batch (see runner.demo)")
    dev = torch.device(device)
    model = model.to(dev).eval()
    preds, expls, scores, curves, failures = [], [], [], [], []
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate_samples,
                                         num_workers=0, pin_memory=dev.type == "cuda")
    for batch in tqdm(loader, desc=f"explain+score {info.name}", disable=not progress, unit="batch"):
        x = normalise(batch["image"].to(dev, non_blocking=True), info)
        skipped: dict[str, str] = {}
        all_maps, logits, targets = run_methods(model, x, list(methods), None, methods, not_applicable=skipped)
        for mname, why in skipped.items():
            if not any(f.startswith(f"{model_id}: {mname} ") for f in failures):
                failures.append(f"{model_id}: {mname} not applicable ({why})")
        probs = torch.softmax(logits.float(), dim=1).cpu()
        conf, pred = probs.max(dim=1)
        ids = batch["image_id"]
        for i, image_id in enumerate(ids):
            preds.append((run_id, dataset_id, model_id, image_id, int(batch["label"][i]), int(pred[i]),
                          float(conf[i]), probs[i].numpy().astype(np.float32)))
        size = x.shape[-2:]
        for mname, mparams in methods.items():
            if mname not in all_maps:
                continue
            minfo = METHODS[mname]
            mjson = canonical_json(mparams)
            maps = all_maps[mname].cpu()
            finite = torch.isfinite(maps).flatten(1).all(1)
            for i in (~finite).nonzero().flatten().tolist():
                failures.append(f"{dataset_id}/{ids[i]}: {mname} map contains NaN or inf; not scored")
            gh, gw = maps.shape[-2:]
            for i, image_id in enumerate(ids):
                expls.append((run_id, dataset_id, model_id, mname, minfo.version, mjson, image_id,
                              int(targets[i]), gh, gw, maps[i].flatten().numpy().astype(np.float32)))
            keep = finite.nonzero().flatten()
            if len(keep) == 0:
                continue
            up = upsample_maps(maps[keep], tuple(size))
            for metric, kparams in metrics.items():
                kinfo = METRICS[metric]
                kjson = canonical_json(kparams)
                if kinfo.kind == "faithfulness":
                    vals, xs, ys = kinfo(up, model=model, images=x[keep.to(dev)], targets=targets[keep.to(dev)],
                                         return_curves=True, **kparams)
                    results = {"none": vals}
                    for j, i in enumerate(keep.tolist()):
                        curves.append((run_id, dataset_id, model_id, mname, minfo.version, mjson, metric,
                                       kinfo.version, kjson, ids[i], xs.astype(np.float32),
                                       ys[j].astype(np.float32)))
                else:
                    results = {region: kinfo(up, reg[keep], **kparams) for region, reg in batch["regions"].items()}
                for region, vals in results.items():
                    for j, i in enumerate(keep.tolist()):
                        v = float(vals[j])
                        scores.append((run_id, dataset_id, model_id, mname, minfo.version, mjson, metric,
                                       kinfo.version, kjson, region, ids[i], None if np.isnan(v) else v))
    for f in failures:
        log.warning(f)
    return EvalResult(
        pd.DataFrame(preds, columns=["run_id", "dataset_id", "model_id", "image_id", "label", "pred",
                                     "confidence", "probs"]),
        pd.DataFrame(expls, columns=["run_id", "dataset_id", "model_id", "method", "method_version",
                                     "method_params", "image_id", "target", "grid_h", "grid_w", "map"]),
        pd.DataFrame(scores, columns=["run_id", "dataset_id", "model_id", "method", "method_version",
                                      "method_params", "metric", "metric_version", "metric_params", "region",
                                      "image_id", "value"]),
        pd.DataFrame(curves, columns=["run_id", "dataset_id", "model_id", "method", "method_version",
                                      "method_params", "metric", "metric_version", "metric_params", "image_id",
                                      "x", "y"]),
        failures,
    )
