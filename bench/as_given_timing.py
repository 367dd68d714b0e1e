"""Time a ViT-B/16-sized model evaluated as given on CPU: ``engine run`` to the first scores, then a rerun.

    python bench/as_given_timing.py --out /tmp/as_given [--threads 2]

Writes random ViT-B/16 weights with a 4-class head (``vitb16.safetensors``, 343 MB) and an experiment
(a generated blood-smear set at 224 px, 8 test images; ``fine_tuning = "as given"``; attention, rollout,
gradcam_attn scored by the pointing game; no MPRT) into ``--out``, then runs ``python -m engine run``
twice on a new database: the first run loads the weights, predicts, explains and scores (nothing is
trained); the second must skip every job.  Prints wall and CPU seconds (the child process's own
accounting) of each run and the load average.  Results: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EXPERIMENT = """
name = "given_b16"
seed = 0
batch_size = 8
work_dir = "work"

[[datasets]]
name = "smear"
generate = "blood_smear"
params = { n_train = 4, n_val = 4, n_test = 8 }
input_size = 224

[[models]]
name = "vit_b16"
weights = "vitb16.safetensors"
fine_tuning = "as given"

[methods]
attention = { layer = -1 }
rollout = {}
gradcam_attn = {}

[metrics]
pointing_game = {}

[sanity]
images = 0
"""


def _run(out: Path, threads: int) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "engine", "run", str(out / "given_b16.toml"), "--db",
                           str(out / "r.duckdb"), "--threads", str(threads)], cwd=ROOT, capture_output=True,
                          text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"engine run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    summary = next((line for line in proc.stdout.splitlines() if "jobs done" in line), "")
    return wall, cpu, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "vitb16.safetensors"
    if not weights.exists():
        import timm
        import torch
        from safetensors.torch import save_file
        torch.manual_seed(0)
        model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=4)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    (out / "given_b16.toml").write_text(EXPERIMENT)
    for stale in ("r.duckdb", "work/checkpoints", "logs"):  # a first run from nothing (the data may stay)
        p = out / stale
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    for what in ("first run (load, predict, explain, score)", "second run (every job skipped)"):
        wall, cpu, summary = _run(out, args.threads)
        print(f"{what}: wall {wall:.1f} s, CPU {cpu:.1f} s, load {os.getloadavg()[0]:.2f} -- {summary}")


if __name__ == "__main__":
    main()
