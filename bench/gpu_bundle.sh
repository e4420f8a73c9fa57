#!/usr/bin/env bash
# bench/gpu_bundle.sh: pack a modc binary with the shared libraries it links (LLVM, oneDNN,
# OpenBLAS, LAPACK, ...; not glibc's, libstdc++'s or libgcc's, which any newer system has) into one
# folder, so that bench/gpu.sh can run on a GPU machine that has CUDA's driver, cuBLAS and NVRTC and
# a python3 with numpy (and torch), but none of modc's build dependencies. CUDA's libraries are not
# packed: modc loads them at run time, from the machine (docs/cuda.md, "Checking on a real GPU").
#
#   bench/gpu_bundle.sh [DIR] [MODC]     DIR: .gpu-bundle (git-ignored); MODC: build/modc
#
# Then, on the GPU machine, in a copy of this repository with DIR in it: bench/gpu_remote.sh DIR
# COMPRESS=xz (the default: about 50 MB for a Debian 12 build) or none (a plain tar, for tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.gpu-bundle}
modc=${2:-$root/build/modc}
[ -x "$modc" ] || { echo "bench/gpu_bundle.sh: no modc at $modc (build it, or pass its path)" >&2; exit 1; }
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
mkdir -p "$dir" "$staging/modc-lib"
cp "$modc" "$dir/modc-bin"
# Every library the loader resolves, but the C and C++ runtimes.
ldd "$modc" | awk '/=> \// {print $3}' |
    grep -v -E '/(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt)\.so' |
    while read -r lib; do cp -L "$lib" "$staging/modc-lib/"; done
rm -f "$dir"/modc-lib.tar*
case ${COMPRESS:-xz} in
    xz) tar -C "$staging" -cf - modc-lib | xz -9 -T0 > "$dir/modc-lib.tar.xz" ;;
    none) tar -C "$staging" -cf "$dir/modc-lib.tar" modc-lib ;;
    *) echo "bench/gpu_bundle.sh: COMPRESS is xz or none" >&2; exit 1 ;;
esac
echo "bench/gpu_bundle.sh: $(ls "$staging/modc-lib" | wc -l) libraries, $(du -sh "$dir" | cut -f1) in $dir"
