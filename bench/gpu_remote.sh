#!/usr/bin/env bash
# bench/gpu_remote.sh: bench/gpu.sh on a GPU machine without modc's build dependencies, from a
# folder made by bench/gpu_bundle.sh. Unpacks the libraries, finds CUDA's cuBLAS and NVRTC, prints
# the machine and a smoke `modc bench`, then runs bench/gpu.sh once per case within a time budget,
# each case with its own JSON report and log (a case cut short by the budget still leaves its log).
#
#   bench/gpu_remote.sh [DIR]      DIR: .gpu-bundle
#
# Settings (environment): REPORTS (build/gpu-remote), the folder of the reports; BUDGET (540),
# seconds for everything; CASES ("mlp gpt:L=1"); BACKEND, PYTHON and the rest as bench/gpu.sh.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(cd "${1:-$root/.gpu-bundle}" && pwd)
reports=${REPORTS:-$root/build/gpu-remote}
budget=${BUDGET:-540}
start=$(date +%s)
mkdir -p "$reports"
lib=$(mktemp -d)
tar -C "$lib" -xf "$dir"/modc-lib.tar* || { echo "bench/gpu_remote.sh: cannot unpack $dir/modc-lib.tar*" >&2; exit 1; }
modc="$lib/modc"
cat > "$modc" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH=$lib/modc-lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH} exec "$dir/modc-bin" "\$@"
WRAP
chmod +x "$modc"

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | head -3
ldd --version 2>&1 | head -1
echo "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
"${PYTHON:-python3}" -c 'import numpy, torch; print("numpy", numpy.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1
# cuBLAS and NVRTC where the loader does not know them (CUDA's own folders, Python's wheels).
find_lib() {
    local p
    p=$(ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n {print $NF; exit}')
    [ -n "$p" ] && { echo "$p"; return; }
    find /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib /usr/lib/x86_64-linux-gnu /opt -name "$1" 2>/dev/null | head -1
}
for pair in MODC_LIBCUBLAS:libcublas.so.13 MODC_LIBNVRTC:libnvrtc.so.13; do
    var=${pair%%:*}
    if [ -z "${!var:-}" ]; then
        path=$(find_lib "${pair#*:}")
        [ -n "$path" ] && export "$var=$path"
    fi
    echo "$var=${!var:-(left to the loader)}"
done
export MODC_CACHE_DIR=${MODC_CACHE_DIR:-$lib/cache} OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} PYTHONUNBUFFERED=1

echo "== smoke"
"$modc" --version | head -1
"$modc" bench "$root/examples/mlp.mod" --backend "${BACKEND:-cuda}" --runs 5 2>&1 | head -12

status=0
for case in ${CASES:-mlp gpt:L=1}; do
    left=$((budget - ($(date +%s) - start)))
    if [ "$left" -lt 30 ]; then
        echo "bench/gpu_remote.sh: no time left for $case" >&2
        status=1
        break
    fi
    name=$(tr -c 'A-Za-z0-9_.\n-' _ <<<"$case")
    echo "== bench/gpu.sh CASES=$case ($left s left)"
    CASES=$case OUT="$reports/gpu_check_$name.json" timeout "$left" bash "$root/bench/gpu.sh" "$modc" \
        > "$reports/gpu_check_$name.log" 2>&1
    code=$?
    tail -20 "$reports/gpu_check_$name.log"
    echo "bench/gpu.sh CASES=$case: exit $code after $(($(date +%s) - start)) s"
    [ "$code" = 0 ] || status=1
done
rm -rf "$lib"
exit $status
