#!/usr/bin/env bash
# bench/gpu.sh: run modc's CUDA backend on the examples and check it against the CPU backend.
#
#   bench/gpu.sh [MODC]        MODC: the modc binary (default: build/modc)
#
# For each case (example:schedule), random gradients (numpy, fixed seed) are dualized with
# `modc dualize --backend cpu` and `--backend cuda`; every weight's update from the GPU must
# be within TOLERANCE of the CPU's (relative Frobenius error). Reported: the worst error, the
# wall time of each modc run (compilation and file I/O included), the GPU's own time for
# one dualization (the CUDA graph alone, median of RUNS runs, from MODC_CUDA_TIMING), and
# beside it the steady-state median GPU time `modc bench --backend cuda` measures (RUNS timed
# runs after 3 warm-up runs, on its own random gradients).
#
# Settings (environment): CASES (default "mlp:polar-express cnn:polar-express gpt:polar-express
# gpt:muon gpt:cubic"), RUNS (20), DTYPE (f32 or f64), PRECISION of the GPU's GEMMs (bf16, the
# CUDA backend's default, tf32 or f32; f64: f32), TOLERANCE (against the CPU in f32 or f64:
# 0.3 for bf16 and 0.04 for tf32, the bounds tests/unit/test_cuda.cpp holds the host runs of
# those programs to against f64; 1e-3 for f32; 1e-9 for f64), SET (extra --set
# arguments for every case, e.g. "--set L=2"). Needs python3 with numpy, and a GPU.
# The NVRTC cache is the usual one ($MODC_CACHE_DIR, else ~/.cache/modc): a second run of
# this script does not compile the kernels again.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
modc=${1:-$root/build/modc}
cases=${CASES:-"mlp:polar-express cnn:polar-express gpt:polar-express gpt:muon gpt:cubic"}
runs=${RUNS:-20}
dtype=${DTYPE:-f32}
if [ "$dtype" = f64 ]; then precision=${PRECISION:-f32}; else precision=${PRECISION:-bf16}; fi
case "$dtype:$precision" in
    f64:*) tolerance=${TOLERANCE:-1e-9} ;;
    *:bf16) tolerance=${TOLERANCE:-0.3} ;;
    *:tf32) tolerance=${TOLERANCE:-0.04} ;;
    *) tolerance=${TOLERANCE:-1e-3} ;;
esac
set_args=${SET:-}

[ -x "$modc" ] || { echo "bench/gpu.sh: no modc at $modc (build it, or pass its path)" >&2; exit 1; }
python3 -c 'import numpy' 2>/dev/null || { echo "bench/gpu.sh: needs python3 with numpy" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# No GPU, no driver, or a modc built without the CUDA toolkit: say so and stop.
if ! probe=$("$modc" dualize "$root/examples/mlp.mod" --in "$work/none" --out "$work/none.out" --backend cuda 2>&1); then
    if grep -q -e "CUDA backend cannot run here" -e "built without NVRTC" <<<"$probe"; then
        echo "$probe" >&2
        exit 1
    fi
fi

cat >"$work/grads.py" <<'PY'
import json, os, sys
import numpy as np
plan, out, dtype = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1)
for leaf in plan["leaves"]:
    g = rng.standard_normal(leaf["shape"]).astype(np.float32 if dtype == "f32" else np.float64)
    np.save(os.path.join(out, leaf["path"] + ".npy"), g)
PY
cat >"$work/compare.py" <<'PY'
import os, sys
import numpy as np
cpu, gpu, tolerance = sys.argv[1], sys.argv[2], float(sys.argv[3])
worst, where, bad = 0.0, "", []
for name in sorted(os.listdir(cpu)):
    a = np.load(os.path.join(cpu, name)).astype(np.float64)
    b = np.load(os.path.join(gpu, name)).astype(np.float64)
    ref = np.linalg.norm(a)
    err = np.linalg.norm(a - b) / ref if ref > 0 else np.linalg.norm(b)
    if not np.all(np.isfinite(b)) or not err <= tolerance:
        bad.append("%s: relative error %.3g" % (name[:-4], err))
    if not err <= worst:
        worst, where = err, name[:-4]
print("%.2e (%s)" % (worst, where))
for line in bad:
    print("  FAIL " + line, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

now() { date +%s.%N; }
printf '%-26s %-8s %10s %10s %12s %12s  %s\n' case weights cpu_s cuda_s gpu_ms bench_gpu_ms "worst error (weight)"
failed=0
for case in $cases; do
    net=${case%%:*}
    schedule=${case#*:}
    file="$root/examples/$net.mod"
    # shellcheck disable=SC2086
    "$modc" explain "$file" --json $set_args >"$work/$net.json"
    rm -rf "$work/grads" "$work/cpu" "$work/cuda"
    python3 "$work/grads.py" "$work/$net.json" "$work/grads" "$dtype"
    weights=$(find "$work/grads" -name '*.npy' | wc -l)
    t0=$(now)
    # shellcheck disable=SC2086
    "$modc" dualize "$file" $set_args --schedule "$schedule" --in "$work/grads" --out "$work/cpu/" --backend cpu
    t1=$(now)
    # shellcheck disable=SC2086
    MODC_CUDA_TIMING=$runs "$modc" dualize "$file" $set_args --schedule "$schedule" --in "$work/grads" \
        --out "$work/cuda/" --backend cuda --precision "$precision" 2>"$work/cuda.log" || { cat "$work/cuda.log" >&2; failed=1; continue; }
    t2=$(now)
    gpu_ms=$(sed -n 's/.*dualization \([0-9.]*\) ms.*/\1/p' "$work/cuda.log")
    if ! worst=$(python3 "$work/compare.py" "$work/cpu" "$work/cuda" "$tolerance"); then
        failed=1
        worst="$worst  FAILED"
    fi
    # shellcheck disable=SC2086
    bench_ms=$("$modc" bench "$file" $set_args --schedule "$schedule" --dtype "$dtype" --precision "$precision" --backend cuda \
        --runs "$runs" --json 2>"$work/bench.log" |
        python3 -c 'import json, sys; print("%.3f" % (json.load(sys.stdin)["gpu_median_seconds"] * 1e3))' 2>/dev/null) ||
        { cat "$work/bench.log" >&2; failed=1; bench_ms="?"; }
    printf '%-26s %-8s %10.2f %10.2f %12s %12s  %s\n' "$net:$schedule" "$weights" "$(echo "$t1 - $t0" | bc)" \
        "$(echo "$t2 - $t1" | bc)" "${gpu_ms:-?}" "$bench_ms" "$worst"
done
sed -n 's/^modc: cuda: \([^;]*\);.*/device: \1/p' "$work/cuda.log" | head -1
if [ "$failed" != 0 ]; then
    echo "bench/gpu.sh: some updates differ from the CPU's, or a run failed (above)" >&2
    exit 1
fi
echo "bench/gpu.sh: every update ($precision GEMMs) within $tolerance of the CPU's"
# The modelled time of the same program at the H100's stated peaks, for comparison with the
# measured GPU time above (docs/cuda.md, "What the program costs").
for case in $cases; do
    net=${case%%:*}
    # shellcheck disable=SC2086
    "$modc" emit "$root/examples/$net.mod" $set_args --schedule "${case#*:}" --emit cost --precision "$precision" \
        --dtype "$dtype" | sed -n "s/^total: .*modelled \([0-9.]*\) ms.*/$case: modelled \1 ms on an H100 (stated peaks)/p"
done
