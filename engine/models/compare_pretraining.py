"""Measure whether offline pretraining helps: pretrain ``vit_demo`` with each strategy on the
generated source set, fine-tune on a small blood-smear training set, report test accuracy.

    python -m engine.models.compare_pretraining --out /tmp/cmp [--n-train 256] [--seeds 0]

Prints one JSON line per (strategy, seed) and a summary; the numbers are in ``docs/models.md``.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import torch

from .factory import create_model
from .pretrain import PretrainConfig, pretrain_backbone
from .train import TrainConfig, evaluate_accuracy, fine_tune

# settings used for the numbers in docs/models.md (steps chosen for roughly a minute on 2 idle cores)
PRETRAIN = {
    "random": PretrainConfig(steps=1),
    "supervised": PretrainConfig(steps=150, batch_size=32, lr=1e-3, warmup_steps=10, patch_drop=0.5),
    "dino": PretrainConfig(steps=60, batch_size=32, lr=1e-3, warmup_steps=5, dino_local_crops=2),
    "mae": PretrainConfig(steps=100, batch_size=64, lr=1.5e-3, warmup_steps=5),
}
FINETUNE = TrainConfig(epochs=15, lr=1e-3, batch_size=32, warmup_epochs=2)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n-train", type=int, default=256)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--strategies", nargs="+", default=list(PRETRAIN))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    from ..data import ImageDataset, load_records
    from ..data.synthetic import SmearConfig, generate_blood_smear, smear_spec
    root = generate_blood_smear(args.out / "smear", SmearConfig(n_train=args.n_train, n_val=128, n_test=400, seed=7),
                                progress=False)
    spec = smear_spec(root)
    records, classes = load_records(spec)
    tr, va, te = (ImageDataset(spec, s, records=records, classes=classes) for s in ("train", "val", "test"))
    results = []
    for seed in args.seeds:
        for strategy in args.strategies:
            pcfg = replace(PRETRAIN[strategy], seed=seed)
            path = pretrain_backbone("vit_demo", strategy, "synthetic", pcfg, cache_dir=args.out / "pretrained",
                                     progress=False)
            side = json.loads(Path(str(path) + ".json").read_text())
            torch.manual_seed(seed)
            model, info = create_model("vit_demo", len(classes), weights=path)
            t1 = time.process_time()
            res = fine_tune(model, info, tr, va, replace(FINETUNE, seed=seed), progress=False)
            acc, _ = evaluate_accuracy(model, info, te, "cpu")
            row = {"strategy": strategy, "seed": seed, "test_accuracy": acc, "val_accuracy": res.best_val_accuracy,
                   "best_epoch": res.best_epoch, "pretrain_cpu_s": side["seconds_cpu"],
                   "pretrain_wall_s": side["seconds_wall"], "finetune_cpu_s": time.process_time() - t1,
                   "first_loss": (side["losses"] or [None])[0], "last_loss": (side["losses"] or [None])[-1]}
            results.append(row)
            print(json.dumps(row), flush=True)
    by = {}
    for r in results:
        by.setdefault(r["strategy"], []).append(r["test_accuracy"])
    print(json.dumps({"summary": {k: sum(v) / len(v) for k, v in by.items()}, "n_train": args.n_train}), flush=True)


if __name__ == "__main__":
    main()
