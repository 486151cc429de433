#!/usr/bin/env bash
# Runs the GPU tests and benchmarks on a CUDA machine, against PyTorch on the same GPU.
#
#   bench/gpu.sh [BUILD_DIR]      (default: build; a build configured with CUDA)
#
# Needs only what the build produced (BUILD_DIR/crosstime, BUILD_DIR/libcrosstime_cuda.so,
# the test programs under BUILD_DIR/tests/) and python3 with torch for the references in
# bench/reference/; no network. Shared libraries that the target machine lacks can be put
# in BUILD_DIR/lib (searched first). Prints every command and its output under a label;
# exits nonzero when a test or benchmark failed. About 3 minutes on one H200.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
PY=${PYTHON:-python3}
REF=$ROOT/bench/reference

if [ ! -x "$BUILD/crosstime" ] || [ ! -f "$BUILD/libcrosstime_cuda.so" ]; then
    echo "bench/gpu.sh: $BUILD has no crosstime or libcrosstime_cuda.so (configure with -DCT_CUDA=ON and build)" >&2
    exit 2
fi
# Only our programs see BUILD_DIR/lib: python and torch keep the machine's own libraries.
# The data paths point at this tree, so a build made elsewhere and copied here finds them.
CT=(env "LD_LIBRARY_PATH=$BUILD/lib:${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/local/cuda/lib64:/usr/local/cuda/lib"
    "CROSSTIME_CUDA_PLUGIN=$BUILD/libcrosstime_cuda.so" "CT_SOURCE_DIR=$ROOT"
    "CROSSTIME_HOME=$ROOT" "CROSSTIME_DATA=$ROOT/data")
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

failed=()
section() { printf '\n===== %s =====\n' "$*"; }
# Each command gets at most $GPU_STEP_TIMEOUT seconds (default 300), so one that hangs
# is reported as failed (exit 124) and the rest still run.
run() {
    printf '$ %s\n' "$*"
    local t0=$SECONDS
    timeout "${GPU_STEP_TIMEOUT:-300}" "$@"
    local rc=$?
    printf -- '-- exit %d, %ds\n' "$rc" "$((SECONDS - t0))"
    [ "$rc" -eq 0 ] || failed+=("$*")
}

section "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 || true
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 || true
date -u

# A GPU test that skips (exit 77) on a GPU machine means the backend did not load: a failure here.
section "GPU tests (CUDA against the CPU kernels)"
for t in tests/kernels/test_kernels_cuda tests/crosscoder/test_cc_cuda tests/analysis/test_attribution_cuda; do
    if [ -x "$BUILD/$t" ]; then
        run "${CT[@]}" "$BUILD/$t"
    else
        echo "missing: $BUILD/$t"
        failed+=("$t (not built)")
    fi
done

# Pythia-70M shape: hidden 512, 6 layers, 8 heads, vocab 50304, 4 x 1024 tokens.
FWD="--hidden 512 --layers 6 --heads 8 --vocab 50304 --ctx 1024 --batch 4 --iters 5"
section "bench forward, Pythia-70M shape, full forward + CE: crosstime cuda"
run "${CT[@]}" "$BUILD/crosstime" bench forward $FWD --device cuda
section "bench forward, Pythia-70M shape, full forward + CE: torch cuda"
run "$PY" "$REF/forward_torch.py" $FWD --device cuda
section "bench forward, Pythia-70M shape, --stop-at 3: crosstime cuda"
run "${CT[@]}" "$BUILD/crosstime" bench forward $FWD --stop-at 3 --device cuda
section "bench forward, Pythia-70M shape, --stop-at 3: torch cuda"
run "$PY" "$REF/forward_torch.py" $FWD --stop-at 3 --device cuda

# Crosscoder training (L1 model): the issue's shape at two densities, then the paper's
# 3-checkpoint Pythia-1B shape (d 2048, H 16384, batch 4096) for a few steps.
cc() {
    local label=$1
    shift
    section "bench crosscoder $label: crosstime cuda"
    run "${CT[@]}" "$BUILD/crosstime" bench crosscoder --type l1 "$@" --device cuda
    section "bench crosscoder $label: torch cuda"
    run "$PY" "$REF/crosscoder_torch.py" "$@" --device cuda
}
# A step at the issue's shape takes about 2 ms on an H100/H200: 200 steps average out the noise.
cc "M=2 d=512 H=4096 batch=1024 P=0.5" --m 2 --d 512 --h 4096 --batch 1024 --steps 200 --density 0.5
cc "M=2 d=512 H=4096 batch=1024 P=0.02" --m 2 --d 512 --h 4096 --batch 1024 --steps 200 --density 0.02
cc "M=3 d=2048 H=16384 batch=4096 P=0.02" --m 3 --d 2048 --h 16384 --batch 4096 --steps 5 --density 0.02

# Where the active-entry kernels start to pay on this GPU (AUTO's threshold is
# CT_CC_CUDA_SPARSE_DENSITY in crosscoder/train_cuda.h), and their effect at the
# 3-checkpoint shape. Training moves the density away from P over a run: read each
# run's density_measured (the mean over its steps).
paths() {
    local label=$1
    shift
    for path in dense sparse; do
        section "bench crosscoder $label --path $path: crosstime cuda"
        run "${CT[@]}" "$BUILD/crosstime" bench crosscoder --type l1 "$@" --path $path --device cuda
    done
}
for p in 0.01 0.02 0.05 0.1 0.2; do
    paths "M=2 d=512 H=4096 batch=1024 P=$p" --m 2 --d 512 --h 4096 --batch 1024 --steps 100 --density $p
done
for p in 0.02 0.05; do
    paths "M=3 d=2048 H=16384 batch=4096 P=$p" --m 3 --d 2048 --h 16384 --batch 4096 --steps 5 --density $p
done

# BatchTopK (k = 200 of 4096 latents, the final k) at the issue's shape.
section "bench crosscoder batchtopk M=2 d=512 H=4096 batch=1024: crosstime cuda"
run "${CT[@]}" "$BUILD/crosstime" bench crosscoder --type batchtopk --m 2 --d 512 --h 4096 --batch 1024 --steps 200 --device cuda
section "bench crosscoder batchtopk M=2 d=512 H=4096 batch=1024: torch cuda"
run "$PY" "$REF/crosscoder_torch.py" --type batchtopk --m 2 --d 512 --h 4096 --batch 1024 --steps 200 --device cuda

# End to end on the GPU: the CI recipe (pretraining to report) with each crosscoder
# model, twice in fresh caches: every artifact but the report (it records timings) must be
# byte-identical between the two runs.
E2E=$(mktemp -d)
blob_digests() { # cache dir -> "label sha256" lines, report left out
    "${CT[@]}" "$BUILD/crosstime" cache ls --json --cache "$1" |
        "$PY" -c 'import json,sys
for l in sys.stdin:
    r=json.loads(l)["record"]
    if r["material"].get("kind") not in ("report", "source_digest_memo"):
        print(r.get("label", ""), r["blob"]["sha256"])' | sort
}
e2e() {
    local type=$1
    shift
    section "end to end on cuda, tiny-ci, $type: two runs, identical artifacts"
    local nfailed=${#failed[@]}
    for r in 1 2; do
        run "${CT[@]}" "$BUILD/crosstime" run "$ROOT/tests/fixtures/recipes/tiny-ci.yaml" --device cuda \
            --cache "$E2E/$type-$r" --set crosscoder.type=$type "$@"
    done
    if [ ${#failed[@]} -ne "$nfailed" ]; then
        echo "not compared: a run failed"
    elif diff <(blob_digests "$E2E/$type-1") <(blob_digests "$E2E/$type-2") >/dev/null; then
        echo "identical: $(blob_digests "$E2E/$type-1" | wc -l) artifacts"
    else
        echo "DIFFERENT artifacts between the two $type runs"
        failed+=("end to end $type: runs differ")
    fi
}
e2e l1
# small k, early θ tracking and a short dead window so that AuxK and θ take part
e2e batchtopk --set crosscoder.dec_init_norm=1.0 --set crosscoder.topk.k_start=16 --set crosscoder.topk.k_end=4 \
    --set crosscoder.topk.k_anneal_steps=20 --set crosscoder.topk.threshold_start_step=10 \
    --set crosscoder.topk.dead_tokens=1K
rm -rf "$E2E"

section "summary"
if [ ${#failed[@]} -eq 0 ]; then
    echo "all GPU tests and benchmarks ran"
    exit 0
fi
echo "FAILED:"
printf '  %s\n' "${failed[@]}"
exit 1
