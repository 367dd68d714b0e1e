#!/usr/bin/env bash
# The GPU check of issue 15, one prepared script (< 8 minutes on one H200), run from the repository root:
#
#   OUT=/some/empty/dir bash bench/gpu_check.sh            # on the GPU machine ($OUT is set there)
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_TINY=1 OUT=/tmp/x bash bench/gpu_check.sh   # CPU dry run, tiny sizes (a test)
#
# (i)   `python -m engine demo --quick --device cuda` (default precision there: bf16) into $OUT/demo.duckdb;
#       PASS only with 0 failed jobs, 0 failed items and a test accuracy for every model;
# (ii)  bench/explain_throughput.py on ViT-B/16 at 224, batch 32 (Captum methods on 8 images), fp32 and bf16,
#       random weights, with the bf16-vs-fp32 map agreement per method; bench/faithfulness_throughput.py,
#       insertion + deletion on ViT-S/16, 64 images, 224 steps, bf16 and fp32 (max |dAUC|); the RISE column
#       only where RISE_DIR points at a RISE checkout (else skipped, and the table says so);
#       bench/precision_agreement.py: bf16 vs fp32 on the demo's trained models, per method (pointing-game
#       agreement, max-scaled map difference, insertion/deletion |dAUC|, the verdict for the default);
# (iii) ONE markdown table on stdout and in $OUT/gpu_table.md (bench/gpu_table.py); logs in $OUT/*.log.
# Environment: OUT (output folder), GPU_CHECK_DEVICE (cuda), GPU_CHECK_TINY (0), PYTHON (python3),
# RISE_DIR / RISE_DEPS (optional). Exit status 1 when the demo did not pass.
set -uo pipefail
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
OUT=${OUT:-/tmp/gpu_check_out}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
TINY=${GPU_CHECK_TINY:-0}
PY=${PYTHON:-python3}
export MPLBACKEND=Agg
mkdir -p "$OUT"
T0=$(date +%s)
step() { echo "[gpu_check +$(( $(date +%s) - T0 ))s] $*" >&2; }

step "preflight"
$PY - "$OUT/preflight.json" "$DEVICE" <<'PYEOF'
import importlib.util, json, sys
out, device = sys.argv[1], sys.argv[2]
missing = {}  # what the engine imports on the run path (captum.attr imports matplotlib)
for mod in ("torch", "timm", "duckdb", "pydantic", "pydantic_core", "annotated_types", "typing_inspection",
            "captum", "matplotlib", "pandas", "scipy", "safetensors", "tqdm", "PIL", "pyarrow"):
    if importlib.util.find_spec(mod) is None:
        missing[mod] = "not installed"
import torch
info = {"device": device, "torch": torch.__version__, "missing": missing}
try:
    import timm
    info["timm"] = timm.__version__
except ImportError:
    pass
if device.startswith("cuda") and torch.cuda.is_available():
    info["gpu"] = torch.cuda.get_device_name(0)
json.dump(info, open(out, "w"), indent=1)
print("preflight:", json.dumps(info))
PYEOF

if [ "$TINY" = "1" ]; then
    # the shared tiny experiment (data/experiments/tiny.toml) as the dry run's variant (tests/tiny_experiment.py)
    $PY tests/tiny_experiment.py "$OUT/tiny.toml" gpu_check || exit 2
    DEMO_CMD="$PY -m engine run $OUT/tiny.toml --device $DEVICE --db $OUT/demo.duckdb --no-progress"
    DEMO_LIMIT=120
    EXPLAIN_ARGS="--model vit_tiny_patch16_224 --img-size 32 --batch 2 --captum-images 2 --reps 1"
    FAITH_ARGS="--model vit_tiny_patch16_224 --img-size 32 --images 4 --n-steps 4 --batch auto"
    EXPLAIN_LIMIT=120
    FAITH_LIMIT=120
    AGREE_ARGS="--images 4 --n-steps 4"
    AGREE_LIMIT=120
else
    DEMO_CMD="$PY -m engine demo --quick --device $DEVICE --db $OUT/demo.duckdb --data-dir /tmp/gpu_check_demo --no-progress"
    DEMO_LIMIT=200
    EXPLAIN_ARGS="--model vit_base_patch16_224 --batch 32 --captum-images 8 --reps 5"
    FAITH_ARGS="--model vit_small_patch16_224 --images 64 --n-steps 224 --batch auto"
    EXPLAIN_LIMIT=120
    FAITH_LIMIT=60
    AGREE_ARGS="--images 32 --n-steps 16"
    AGREE_LIMIT=70
fi

step "(i) $DEMO_CMD"
D0=$(date +%s)
timeout "$DEMO_LIMIT" $DEMO_CMD > "$OUT/demo.log" 2>&1
echo "demo exit status $?" >> "$OUT/demo.log"
tail -n 15 "$OUT/demo.log" >&2
$PY bench/gpu_demo_check.py "$OUT/demo.duckdb" "$(( $(date +%s) - D0 ))" "$DEMO_CMD" "$OUT/demo_check.json"

step "(ii) explanation throughput, fp32 then bf16, and the bf16-vs-fp32 agreement"
timeout "$EXPLAIN_LIMIT" $PY bench/explain_throughput.py $EXPLAIN_ARGS --device "$DEVICE" --precision fp32 bf16 \
    --agreement --json "$OUT/explain.json" > "$OUT/explain.log" 2>&1 || echo "explain: exit $?" >&2

step "(ii) insertion + deletion, bf16 and fp32"
RISE_ARGS=()
if [ -n "${RISE_DIR:-}" ]; then RISE_ARGS=(--rise "$RISE_DIR"); fi
if [ -n "${RISE_DEPS:-}" ]; then RISE_ARGS+=(--deps "$RISE_DEPS"); fi
timeout "$FAITH_LIMIT" $PY bench/faithfulness_throughput.py $FAITH_ARGS --device "$DEVICE" --precision bf16 \
    --agreement "${RISE_ARGS[@]}" --json "$OUT/faith.json" > "$OUT/faith.log" 2>&1 || echo "faith: exit $?" >&2

step "(ii) bf16 vs fp32 on the demo's trained models (pointing game, maps, insertion / deletion AUC)"
timeout "$AGREE_LIMIT" $PY bench/precision_agreement.py --db "$OUT/demo.duckdb" --device "$DEVICE" $AGREE_ARGS \
    --json "$OUT/agreement.json" > "$OUT/agreement.log" 2>&1 || echo "agreement: exit $?" >&2

step "(iii) table"
$PY bench/gpu_table.py "$OUT"
RC=$?
step "done"
exit $RC
