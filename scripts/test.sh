#!/usr/bin/env bash
# Builds modc (if needed) and runs every test: Catch2 unit tests, golden and error tests (lit).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
ctest --test-dir build --output-on-failure -j 2
