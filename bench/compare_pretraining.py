"""Measure whether offline pretraining helps: pretrain ``vit_demo`` with each strategy on the
generated source set, fine-tune on a small blood-smear training set (the same learning-rate grid
for every strategy, the best validation trial kept), report test accuracy.

    python bench/compare_pretraining.py --out /tmp/cmp [--n-train 256] [--seeds 0]

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

from engine.data import ImageDataset, load_records
from engine.data.synthetic.smear import SmearConfig, generate_blood_smear, smear_spec
from engine.models.factory import create_model
from engine.models.grid import grid_search
from engine.models.pretrain import PretrainConfig, pretrain_backbone
from engine.models.train import TrainConfig, evaluate_accuracy

# settings used for the numbers in docs/models.md, the same as data/experiments/demo.toml's strategy models
# (about 1.5 minutes of pretraining each on 2 idle cores; DINO about 2)
PRETRAIN = {
    "random": PretrainConfig(steps=1),
    "supervised": PretrainConfig(steps=600, batch_size=64, lr=1e-3, warmup_steps=20, patch_drop=0.5),
    "dino": PretrainConfig(steps=200, batch_size=32, lr=5e-4, warmup_steps=20, dino_out_dim=256, dino_local_crops=2,
                           dino_freeze_prototypes_steps=64),
    "mae": PretrainConfig(steps=600, batch_size=64, lr=1.5e-3, warmup_steps=20),
}
FINETUNE = TrainConfig(epochs=15, lr=1e-3, batch_size=32, warmup_epochs=2)
GRID = {"lr": [1e-3, 3e-4]}  # every strategy gets the same grid; the trial with the best validation score is kept


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
            t1 = time.process_time()
            found = grid_search(lambda: create_model("vit_demo", len(classes), weights=path), tr, va,
                                replace(FINETUNE, seed=seed), GRID, progress=False)
            acc, _ = evaluate_accuracy(found.model, found.info, te, "cpu")
            res = found.result
            row = {"strategy": strategy, "seed": seed, "test_accuracy": acc, "val_accuracy": res.best_val_accuracy,
                   "lr": found.config.lr, "best_epoch": res.best_epoch, "collapse": side.get("collapse"),
                   "pretrain_cpu_s": side["seconds_cpu"],
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
