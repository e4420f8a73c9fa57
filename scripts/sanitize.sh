#!/usr/bin/env bash
# The test suite under AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer: configures
# build-asan (RelWithDebInfo, -fsanitize=address,undefined), builds it and runs ctest. Any
# sanitizer report fails the test that caused it.
#
#   bash scripts/sanitize.sh [BUILD_DIR]      (default: build-asan; MODC_JOBS=N, default 2)
#
# Left out, and why:
#   package              installs libmodc and builds examples/cpp against it with plain flags; an
#                        ASan-built library needs its users linked with -fsanitize=address too.
#   python, pip_install  the extension module would be loaded by an uninstrumented python3, which
#                        cannot host the ASan runtime unless it is preloaded: MODC_PYTHON=OFF here.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-asan}"
jobs="${MODC_JOBS:-2}"
start=$(date +%s)

sanitize="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODC_PYTHON=OFF \
  -DCMAKE_C_FLAGS="$sanitize" -DCMAKE_CXX_FLAGS="$sanitize" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build "$build" -j "$jobs"
built=$(date +%s)

# Leaks are errors; UBSan stops at the first report, with a stack. The test binaries print the
# reports; ctest shows them with --output-on-failure. (No fake stacks for use-after-return: the
# compiler's 512 MB stack for deeply nested input would need as much again.)
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
echo "sanitize.sh: not run here: package (its users would need -fsanitize too), python and pip_install" \
     "(an uninstrumented python3 cannot load an ASan-built module)"
ctest --test-dir "$build" --output-on-failure -j "$jobs" -E '^(package|python|pip_install)$'
end=$(date +%s)
echo "sanitize.sh: build $((built - start)) s, tests $((end - built)) s, ASan + UBSan clean"
