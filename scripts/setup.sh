#!/usr/bin/env bash
# Installs what modc needs on Debian 12 (apt only) and builds it into build/.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build g++ python3
  libboost-dev libcli11-dev nlohmann-json3-dev libfmt-dev catch2
  llvm-14-dev llvm-14-tools
  libopenblas-dev liblapacke-dev
  libdnnl-dev              # oneDNN: the CPU matmuls in f32 and bf16 (runtime/cpu), bench/gemm_rate
  ocl-icd-opencl-dev       # oneDNN's CMake package looks for OpenCL (libdnnl-dev only recommends it)
  graphviz
  python3-numpy            # tests: .npy interop; bench/run.py
  python3-torch python3-matplotlib   # bench/run.py: the PyTorch peer and the plot
  pybind11-dev python3-dev            # the Python package (build/python/modc)
  python3-venv                        # tests/python/pip_install.sh: `pip install .` into a fresh venv
  python3-pytest python3-sklearn      # its tests, and examples/train_digits.py (sklearn's digits)
  clang-14 libclang-rt-14-dev         # scripts/fuzz.sh: libFuzzer (tests/fuzz/)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
