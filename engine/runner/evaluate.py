"""Explain and score one model on one dataset split: predictions, maps and per-image scores as DataFrames.

One forward + backward per batch (the trace) serves every trace method (Captum methods add their
own passes); several parameter variants of one method (e.g. ``attention`` at each layer) run in
successive rounds.  Every map is upsampled once with the shared helper and scored against every
region of the batch with the metrics asked for that method.

Nothing here stops on one bad batch or map: a failing batch (out of memory, a method error) and a
NaN map become :class:`~engine.runner.results.Failure` records and the rest goes on.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..common.precision import stage_precision
from ..data import ImageDataset, collate_samples
from ..explain import METHODS, run_methods, upsample_maps
from ..metrics import METRICS
from ..metrics.class_sensitivity import OTHER_CLASS, other_targets
from ..metrics.quality import centre_coverage, degenerate_kinds
from ..models import ModelInfo, normalise
from ..store import canonical_json
from .results import Failure, first_line

log = logging.getLogger(__name__)

EXPL_COLS = ["run_id", "dataset_id", "model_id", "method", "method_version", "method_params", "image_id", "target",
             "grid_h", "grid_w", "map", "precision"]
SCORE_COLS = ["run_id", "dataset_id", "model_id", "method", "method_version", "method_params", "metric",
              "metric_version", "metric_params", "region", "image_id", "value", "precision"]
CURVE_COLS = ["run_id", "dataset_id", "model_id", "method", "method_version", "method_params", "metric",
              "metric_version", "metric_params", "image_id", "x", "y", "precision"]
TARGET_MAP_COLS = [*EXPL_COLS[:7], "role", *EXPL_COLS[7:]]
TARGET_SCORE_COLS = [*SCORE_COLS[:11], "role", "target", *SCORE_COLS[11:]]
DEGENERATE_COLS = ["run_id", "dataset_id", "model_id", "method", "method_version", "method_params", "image_id", "kind"]
REGION_COLS = ["dataset_id", "region", "image_id", "area", "covers_centre"]


@dataclass
class EvalResult:
    explanations: pd.DataFrame
    scores: pd.DataFrame
    curves: pd.DataFrame
    failures: list[Failure] = field(default_factory=list)
    degenerate: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DEGENERATE_COLS))
    region_stats: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REGION_COLS))
    target_maps: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TARGET_MAP_COLS))
    target_scores: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TARGET_SCORE_COLS))


@dataclass
class _Rows:
    """Rows produced for one batch: explanations, scores and curves as tuples (column orders above), failures."""
    explanations: list[tuple] = field(default_factory=list)
    scores: list[tuple] = field(default_factory=list)
    curves: list[tuple] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    degenerate: list[tuple] = field(default_factory=list)
    regions: list[tuple] = field(default_factory=list)
    target_maps: list[tuple] = field(default_factory=list)
    target_scores: list[tuple] = field(default_factory=list)

    def add(self, other: "_Rows") -> None:
        self.target_maps += other.target_maps
        self.target_scores += other.target_scores
        self.explanations += other.explanations
        self.scores += other.scores
        self.curves += other.curves
        self.failures += other.failures
        self.degenerate += other.degenerate
        self.regions += other.regions


@dataclass(frozen=True)
class _Batch:
    """One batch as the metrics see it: the model, normalised images, explained classes, ids and regions."""
    model: torch.nn.Module
    x: torch.Tensor
    targets: torch.Tensor
    ids: list[str]
    regions: dict[str, torch.Tensor]
    precision: str = "fp32"  # of the run (stage_precision gives the faithfulness forwards'); maps: run_methods'


def _rounds(variants: list[tuple[str, dict]]) -> list[list[tuple[str, dict]]]:
    """Split variants into rounds holding each method name at most once (run_methods' shape)."""
    rounds: list[list[tuple[str, dict]]] = []
    for name, params in variants:
        for r in rounds:
            if all(n != name for n, _ in r):
                r.append((name, params))
                break
        else:
            rounds.append([(name, params)])
    return rounds


def evaluate_model(model: torch.nn.Module, info: ModelInfo, ds: ImageDataset, *, run_id: str, dataset_id: str,
                   model_id: str, methods: dict[str, dict] | list[tuple[str, dict]], metrics: dict[str, dict],
                   metrics_for=None, regions: list[str] | None = None, device: str = "cpu", batch_size: int = 32,
                   progress: bool = True, precision: str = "fp32") -> EvalResult:
    """Explain (predicted class) and score every image of ``ds``; for a misclassified image also the map of
    its true class, scored by the localisation metrics (``target_maps`` / ``target_scores``, role 'true').
    The predictions rows are :func:`engine.runner.units.predict_unit`'s: its own forwards, at the predict
    stage's precision.

    ``precision``: the run's, ``fp32`` or ``bf16``; each stage's is decided once, by
    :func:`engine.common.precision.stage_precision` (by default fp32 for explanations and the faithfulness
    forwards, as measured).  The ``precision`` column of every row records what was applied: for maps and
    localisation scores, the precision :func:`engine.explain.run_methods` reports it computed that map at
    (per method: :func:`engine.explain.registry.method_precision`); for curves and faithfulness scores, that
    of the forwards.

    ``methods``: ``{name: params}`` or a list of ``(name, params)`` variants; ``metrics``:
    ``{name: params}``; ``metrics_for(name, params) -> {metric: params}`` narrows the metrics of a
    variant (default: all); ``regions``: score only these regions (default: every region).
    """
    variants = list(methods.items()) if isinstance(methods, dict) else list(methods)
    for m, _ in variants:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; registered: {sorted(METHODS)}")
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"unknown metric {m!r}; registered: {sorted(METRICS)} (MPRT runs per model: "
                             f"engine.metrics.sanity)")
    metrics_for = metrics_for or (lambda name, params: metrics)
    dev = torch.device(device)
    model = model.to(dev).eval()
    rows = _Rows()

    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate_samples,
                                         num_workers=0, pin_memory=dev.type == "cuda")
    for batch in tqdm(loader, desc=f"explain+score {info.name}", disable=not progress, unit="batch"):
        x = normalise(batch["image"].to(dev, non_blocking=True), info)
        ids = batch["image_id"]
        batch_regions = {k: v for k, v in batch["regions"].items() if regions is None or k in regions}
        for rname, reg in batch_regions.items():
            covers, area = centre_coverage(reg)
            rows.regions += [(dataset_id, rname, i, float(a), bool(c)) for i, a, c in zip(ids, area, covers)]
        for round_ in _rounds(variants):
            skipped: dict[str, str] = {}
            failed: dict[str, str] = {}  # a method that raised or broke its call contract on this batch
            applied: dict[str, str] = {}  # the precision each map was computed at, as run_methods applied it
            try:
                all_maps, logits, targets = run_methods(model, x, [n for n, _ in round_], None, dict(round_),
                                                        not_applicable=skipped, failed=failed, applied=applied,
                                                        precision=stage_precision("explain", precision))
            except Exception as exc:  # e.g. out of memory on this batch: record, go on with the next
                rows.failures += [Failure(i, "explain", first_line(exc), n) for n, _ in round_ for i in ids]
                continue
            rows.failures += [Failure(i, "explain", why, n) for n, why in failed.items() for i in ids]
            for mname, why in skipped.items():
                if not any(f.method == mname and f.item == "*" for f in rows.failures):
                    rows.failures.append(Failure("*", "explain", f"not applicable: {why}", mname))
            batch_ = _Batch(model, x, targets, ids, batch_regions, precision)
            done = [(n, p) for n, p in round_ if n in all_maps]
            others, other_failed = _other_class_maps(batch_, done, metrics_for, logits)
            rows.failures += other_failed
            for mname, mparams in done:
                rows.add(_score_method(all_maps[mname].cpu(), (mname, mparams), metrics_for(mname, mparams),
                                       batch_, (run_id, dataset_id, model_id), applied[mname],
                                       {k[1:]: v for k, v in others.items() if k[0] == mname}))
            rows.add(_true_class_rows(batch_, batch["label"], done, metrics_for, (run_id, dataset_id, model_id)))
    for f in rows.failures:
        log.warning("%s %s: %s failed at %s: %s", dataset_id, model_id, f.method, f.stage, f"{f.item}: {f.reason}")
    return EvalResult(pd.DataFrame(rows.explanations, columns=EXPL_COLS), pd.DataFrame(rows.scores, columns=SCORE_COLS),
                      pd.DataFrame(rows.curves, columns=CURVE_COLS),
                      rows.failures, pd.DataFrame(rows.degenerate, columns=DEGENERATE_COLS),
                      pd.DataFrame(rows.regions, columns=REGION_COLS).drop_duplicates(["region", "image_id"]),
                      pd.DataFrame(rows.target_maps, columns=TARGET_MAP_COLS),
                      pd.DataFrame(rows.target_scores, columns=TARGET_SCORE_COLS))


def _true_class_rows(batch: _Batch, labels: torch.Tensor, variants: list[tuple[str, dict]], metrics_for,
                     prefix: tuple[str, str, str]) -> _Rows:
    """For the misclassified images of ``batch`` (label != explained class): each method's map for the true
    class, scored by the method's localisation metrics against the same regions, as ``target_maps`` /
    ``target_scores`` rows with role 'true' (the predicted class's map is the ordinary explanations row).
    Degenerate true-class maps get NULL scores; a failing pass becomes Failures and the rest goes on."""
    out = _Rows()
    labels = torch.as_tensor(labels).long().cpu()
    wrong = ((labels != batch.targets.cpu()) & (labels >= 0)).nonzero().flatten()
    wanted = {n: p for n, p in variants if any(METRICS[m].kind == "localisation" for m in metrics_for(n, p))}
    if len(wrong) == 0 or not wanted or not batch.regions:
        return out
    sub = _Batch(batch.model, batch.x[wrong.to(batch.x.device)], labels[wrong].to(batch.x.device),
                 [batch.ids[i] for i in wrong.tolist()], {k: v[wrong] for k, v in batch.regions.items()},
                 batch.precision)
    applied: dict[str, str] = {}
    try:
        maps, _, _ = run_methods(sub.model, sub.x, list(wanted), sub.targets, wanted,
                                 precision=stage_precision("explain", batch.precision), applied=applied)
    except Exception as exc:
        out.failures += [Failure(i, "explain", f"map for the true class: {first_line(exc)}", m)
                         for m in wanted for i in sub.ids]
        return out
    target_of = dict(zip(sub.ids, sub.targets.tolist()))
    for name, params in wanted.items():
        loc = {m: p for m, p in metrics_for(name, params).items() if METRICS[m].kind == "localisation"}
        r = _score_method(maps[name].cpu(), (name, params), loc, sub, prefix, applied[name])
        out.target_maps += [(*e[:7], "true", *e[7:]) for e in r.explanations]
        out.target_scores += [(*v[:11], "true", target_of[v[10]], *v[11:]) for v in r.scores]
        out.failures += [Failure(f.item, f.stage, f"true-class map: {f.reason}", f.method) for f in r.failures]
    return out


def _other_class_maps(batch: _Batch, variants: list[tuple[str, dict]], metrics_for, logits: torch.Tensor
                      ) -> tuple[dict[tuple[str, str, int], torch.Tensor], list[Failure]]:
    """The maps for another class that the class-sensitivity metrics of ``variants`` need, keyed by (method,
    rule, seed): one explanation pass per (rule, seed) for every method that needs it.  A failure (e.g. a
    one-output model) becomes a Failure per image and method, and those metrics go unscored."""
    need: dict[tuple[str, int], dict[str, dict]] = {}
    for mname, mparams in variants:
        for metric, kparams in metrics_for(mname, mparams).items():
            rule = OTHER_CLASS.get(metric)
            if rule is not None:
                seed = int(kparams.get("seed", 0)) if rule == "random" else 0
                need.setdefault((rule, seed), {})[mname] = mparams
    out: dict[tuple[str, str, int], torch.Tensor] = {}
    failures: list[Failure] = []
    for (rule, seed), wanted in need.items():
        try:
            other = other_targets(logits, batch.targets, batch.ids, rule, seed).to(batch.x.device)
            maps, _, _ = run_methods(batch.model, batch.x, list(wanted), other, wanted,
                                     precision=stage_precision("explain", batch.precision))
        except Exception as exc:
            failures += [Failure(i, "explain", f"map for another class ({rule}): {first_line(exc)}", m)
                         for m in wanted for i in batch.ids]
            continue
        out.update({(m, rule, seed): v.cpu() for m, v in maps.items()})
    return out, failures


def _score_method(maps: torch.Tensor, variant: tuple[str, dict], metrics: dict[str, dict], batch: _Batch,
                  prefix: tuple[str, str, str], map_precision: str,
                  others: dict[tuple[str, int], torch.Tensor] | None = None) -> _Rows:
    """One method's maps of a batch (``variant``: its name and parameters) as explanation rows, scored with
    ``metrics``; ``prefix``: (run_id, dataset_id, model_id) of every row; ``map_precision``: the precision the
    maps were computed at (as :func:`engine.explain.run_methods` reported it), recorded with them; ``others``:
    the method's maps for other classes by (rule, seed), for the class-sensitivity metrics (native grid).

    A degenerate map (engine.metrics.quality: non-finite, all-zero or constant) is recorded in
    ``degenerate`` and never scored: a non-finite map is a failure and not stored; an all-zero or constant
    map is stored (for display) and gets NULL scores, not chance."""
    mname, mparams = variant
    ids, out = batch.ids, _Rows()
    mkey = (mname, METHODS[mname].version, canonical_json(mparams))
    faith_precision = stage_precision("faithfulness", batch.precision)
    kinds = degenerate_kinds(maps)
    finite = torch.tensor([k != "nonfinite" for k in kinds], dtype=torch.bool)
    for i, kind in enumerate(kinds):
        if kind == "nonfinite":
            out.failures.append(Failure(ids[i], "explain", "map contains NaN or inf; not scored", mname))
        if kind is not None:
            out.degenerate.append((*prefix, *mkey, ids[i], kind))
    gh, gw = maps.shape[-2:]
    for i, image_id in enumerate(ids):
        if finite[i]:
            out.explanations.append((*prefix, *mkey, image_id, int(batch.targets[i]), gh, gw,
                                     maps[i].flatten().numpy().astype(np.float32), map_precision))
    for i, kind in enumerate(kinds):
        if kind in ("zero", "constant"):
            for metric, kparams in metrics.items():
                kkey = (metric, METRICS[metric].version, canonical_json(kparams))
                faith = METRICS[metric].kind == "faithfulness"
                for region in (batch.regions if METRICS[metric].kind == "localisation" else ["none"]):
                    out.scores.append((*prefix, *mkey, *kkey, region, ids[i], None,
                                       faith_precision if faith else map_precision))
    keep = torch.tensor([k is None for k in kinds], dtype=torch.bool).nonzero().flatten()
    if len(keep) == 0:
        return out
    up = upsample_maps(maps[keep], tuple(batch.x.shape[-2:]))
    kdev = keep.to(batch.x.device)
    kept = keep.tolist()
    for metric, kparams in metrics.items():
        kinfo = METRICS[metric]
        kkey = (metric, kinfo.version, canonical_json(kparams))
        try:
            if kinfo.kind == "faithfulness":
                vals, xs, ys = kinfo(up.to(batch.x.device), model=batch.model, images=batch.x[kdev],
                                     targets=batch.targets[kdev], return_curves=True, precision=faith_precision,
                                     **kparams)
                results = {"none": checked_values(kinfo, vals, len(kept))}
                xs, ys = np.asarray(xs, dtype=np.float32), np.asarray(ys, dtype=np.float32)
                if xs.ndim != 1 or ys.shape != (len(kept), len(xs)):
                    raise ValueError(f"returned curves of shapes {xs.shape} and {ys.shape}; the call contract is "
                                     f"(S,) and ({len(kept)}, S)")
                for j, i in enumerate(kept):
                    out.curves.append((*prefix, *mkey, *kkey, ids[i], xs, ys[j], faith_precision))
            elif kinfo.kind == "class_sensitivity":
                rule = OTHER_CLASS[metric]
                other = (others or {}).get((rule, int(kparams.get("seed", 0)) if rule == "random" else 0))
                if other is None:
                    continue  # its explanation pass failed: recorded by _other_class_maps
                results = {"none": checked_values(kinfo, kinfo(maps[keep], other[keep], **kparams), len(kept))}
            else:
                results = {region: checked_values(kinfo, kinfo(up, reg[keep], **kparams), len(kept), reg[keep])
                           for region, reg in batch.regions.items()}
        except Exception as exc:
            out.failures += [Failure(ids[i], "score", f"{metric}: {first_line(exc)}", mname) for i in kept]
            continue
        for region, (vals, broken) in results.items():
            for j, i in enumerate(kept):
                if broken[j]:
                    out.failures.append(Failure(ids[i], "score", f"{metric}: returned NaN where there was something "
                                                f"to score (region {region!r})", mname))
                    continue
                v = float(vals[j])
                out.scores.append((*prefix, *mkey, *kkey, region, ids[i], None if np.isnan(v) else v,
                                   faith_precision if kinfo.kind == "faithfulness" else map_precision))
    return out


def checked_values(kinfo, vals, n: int, regions: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A metric's values as float64 ``(n,)`` and which of them break the call contract (engine.metrics.registry):
    ValueError for another shape or an inf; for a plugin, a NaN where the region is not empty (or any NaN of
    a faithfulness metric) is broken -- a failure, not 'not scored' (built-ins keep their documented NaN)."""
    vals = np.asarray(vals.detach().cpu() if torch.is_tensor(vals) else vals, dtype=np.float64)
    if vals.shape != (n,):
        raise ValueError(f"returned shape {vals.shape}; the call contract is one value per image, ({n},)")
    if np.isinf(vals).any():
        raise ValueError("returned inf; the call contract is finite values (NaN: not scored)")
    broken = np.zeros(n, dtype=bool)
    if not kinfo.builtin:
        filled = np.ones(n, dtype=bool) if regions is None else regions.reshape(n, -1).any(dim=1).cpu().numpy()
        broken = np.isnan(vals) & filled
    return vals, broken
