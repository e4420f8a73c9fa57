#!/usr/bin/env bash
# bench/gpu.sh: the check to run once on a GPU (about ten minutes on an H100): modc's CUDA backend
# against its CPU backend in f64, every schedule x precision, on Gaussian and ill-conditioned
# gradients; bf16 storage; the optimizer step; `modc bench` timings; PyTorch's bf16 Muon; an
# nsys profile. One JSON report, its path printed last; exit 1 naming every failed check.
#
#   bench/gpu.sh [MODC]        MODC: the modc binary (default: build/modc)
#
# Settings (environment; docs/cuda.md, "Checking on a real GPU"):
#   BACKEND     cuda (default), or cuda-sim: the same checks on the simulator (how CI tests this script)
#   CASES       networks of examples/ with --set values: "mlp gpt:L=1" (default; add cnn, gpt:L=2,d=64, ...)
#   SCHEDULES   "polar-express muon you cubic"
#   PRECISIONS  of the GEMMs on f32 gradients: "f32 tf32 bf16"; F64=0 leaves out the f64 runs
#   SPECTRA     "gaussian decay1 decay2 lowrank deficient zero huge tiny"
#   PARTS       "dualize step bench torch profile"
#   RUNS (20)   timed runs of `modc bench` and of the PyTorch baseline; STEPS (3) optimizer steps
#   OUT         the JSON report (default: build/gpu_check-BACKEND-DATE.json)
#   TOLERANCE_SCALE (1) multiplies every tolerance; GPU_CHECK_CORRUPT=1 negates one update before
#               comparing: both there to show that a mismatch fails the script
#   PYTHON      the Python with numpy (and optionally torch, and modc's package on PYTHONPATH)
# The NVRTC cache is the usual one ($MODC_CACHE_DIR, else ~/.cache/modc).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
"$python" -c 'import numpy' 2>/dev/null || { echo "bench/gpu.sh: needs $python with numpy (set PYTHON)" >&2; exit 1; }
exec "$python" "$root/bench/gpu_check.py" "$@"
