#!/usr/bin/env bash
# GPU readiness in one command (about 9 minutes on one H200): what linearcast does on CUDA.
#
#   bash benchmarks/device_check.sh            # on a machine with a CUDA GPU and linearcast's deps
#   OUT=/tmp/dc DEVICE=cpu QUICK=1 bash benchmarks/device_check.sh   # dry run of the script here
#
# Phases (each time-boxed; what finishes is kept):
#   1. the training-step benchmark at N=883, batch 16 (official materialised softmax, SDPA
#      STAEformer, ELinFormer, ELinFormer + checkpointing) in float32 and bf16 autocast, on a
#      quiet GPU; then the inference benchmark (N=883/8600, batch 1/64)
#   2. at the same time: tests/test_cuda.py (every fast kernel vs its reference in float32 and
#      bf16, every spatio-temporal model CPU vs GPU, a bf16-mixed training run) and the
#      official-width results runs (results/run.py official-width), several processes at once
#   3. the scaling curve N=170..8600 with what time is left
# Everything lands in $OUT: the log and the test log beside one tarball holding every benchmark
# JSON/PNG, the phase logs and the results summaries (at most 8 files come back from a device
# machine).
set -u
OUT=${OUT:-benchmarks/results/device}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
LOGS=$(mktemp -d)
mkdir -p "$OUT"
ROOT=$(pwd)
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT/src:${PYTHONPATH:-}"
if [ -d .whl ] && ! python3 -c "import lightning_fabric" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
[ -d .devdata ] && export LINEARCAST_SHARED_DATA="$ROOT/.devdata"
PY=${PY:-python3}
START=$(date +%s)
left() { echo $(( ${BUDGET:-540} - ($(date +%s) - START) )); }
log() { echo "[$(date +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/device_check.log"; }

{ nvidia-smi 2>&1 || true; $PY -c "import torch, sys; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"; } > "$LOGS/environment.txt" 2>&1
log "environment: $(tail -1 "$LOGS/environment.txt")"

if [ "$QUICK" = 1 ]; then GRID="40x2"; NS_INF="40"; NS_SCALE="20 40"; REPEATS=1
else GRID="883x16"; NS_INF="883 8600"; NS_SCALE="883 2000 4000 8600"; REPEATS=5; fi

# ---- 1. benchmarks on a quiet device
log "step benchmark fp32"
timeout 150 $PY benchmarks/staeformer_step.py --device "$DEVICE" --grid $GRID --repeats $REPEATS --tag "$DEVICE" > "$LOGS/step_fp32.log" 2>&1 || log "step fp32 exit $?"
log "step benchmark bf16"
timeout 90 $PY benchmarks/staeformer_step.py --device "$DEVICE" --grid $GRID --repeats $REPEATS --precision bf16 --tag "$DEVICE-bf16" > "$LOGS/step_bf16.log" 2>&1 || log "step bf16 exit $?"
log "inference benchmark"
timeout 90 $PY benchmarks/staeformer_inference.py --device "$DEVICE" --ns $NS_INF --repeats $REPEATS --tag "$DEVICE" > "$LOGS/inference.log" 2>&1 || log "inference exit $?"

# ---- 2. tests and results runs side by side
log "CUDA tests and official-width results runs"
LINEARCAST_TEST_DEVICE=$DEVICE timeout 200 $PY -m pytest tests/test_cuda.py -q -p no:cacheprovider -n 4 --junitxml="$LOGS/cuda_tests.xml" > "$OUT/cuda_tests.log" 2>&1 &
TESTS=$!
RUNS_TIMEOUT=$(( $(left) - 100 )); [ "$RUNS_TIMEOUT" -lt 30 ] && RUNS_TIMEOUT=30
if [ "$QUICK" = 1 ]; then  # a dry run only lists them (official width is hours on a CPU)
  $PY results/run.py official-width --list > "$LOGS/results_runs.log" 2>&1 || log "results list exit $?"
else
  timeout $RUNS_TIMEOUT $PY results/run.py official-width --jobs 6 --threads 2 --extra=--accelerator="$DEVICE" > "$LOGS/results_runs.log" 2>&1 || log "results runs exit $? (time box ${RUNS_TIMEOUT}s)"
fi
wait $TESTS; log "tests exit $?: $(tail -1 "$OUT/cuda_tests.log")"

# ---- 3. scaling with what is left
SCALE_TIMEOUT=$(( $(left) - 20 ))
if [ "$SCALE_TIMEOUT" -gt 30 ]; then
  log "scaling (time box ${SCALE_TIMEOUT}s)"
  timeout $SCALE_TIMEOUT $PY benchmarks/staeformer_scaling.py --device "$DEVICE" --ns $NS_SCALE --timeout 60 --budget-gib 100 --tag "$DEVICE" > "$LOGS/scaling.log" 2>&1 || log "scaling exit $?"
fi

# ---- collect
tar czf "$OUT/device_results.tar.gz" benchmarks/results/*"$DEVICE"* results/official-width \
  results/work/logs -C "$LOGS" . 2>/dev/null
log "done; $(ls "$OUT" | wc -l) files in $OUT"
