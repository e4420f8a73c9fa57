#!/usr/bin/env bash
# A bounded libFuzzer run over the parser and elaboration (tests/fuzz/fuzz_compile.cpp: the
# front half of modc on any bytes) with ASan + UBSan and leak detection, from a seed corpus of
# every .mod file of the examples and the tests. Exit 0 when nothing was found; otherwise the
# input that crashed, leaked or hung is in BUILD/artifacts/ (make it a test, then fix it).
#
#   bash scripts/fuzz.sh [SECONDS]      (default 60; MODC_FUZZ_BUILD=build-fuzz, MODC_JOBS=2,
#                                        MODC_FUZZ_CXX=clang++-14)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
build="${MODC_FUZZ_BUILD:-build-fuzz}"
start=$(date +%s)
cmake -S tests/fuzz -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="${MODC_FUZZ_CXX:-clang++-14}" >/dev/null
cmake --build "$build" -j "${MODC_JOBS:-2}"
built=$(date +%s)

# The seeds, copied (what the fuzzer adds stays in the build folder), with the inputs that once
# found a bug (tests/fuzz/regressions/). The reproducers of the elaboration budget are left out:
# by design each runs for seconds, and their mutants would too.
corpus="$build/corpus"
mkdir -p "$corpus" "$build/artifacts"
for f in examples/*.mod tests/errors/*.mod tests/golden/*.mod prelude/prelude.mod tests/fuzz/regressions/*.mod; do
    case "$f" in tests/errors/elaboration_budget*) continue ;; esac
    cp "$f" "$corpus/seed_$(echo "$f" | tr / _)"
done

# -timeout: a run slower than this is a hang (the work budget ends any input within a few
# seconds, ASan included); -rss_limit_mb: a network at the module limit takes about 1 GB.
export ASAN_OPTIONS="detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
"$build/fuzz_compile" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -max_len=16384 \
    -artifact_prefix="$build/artifacts/" -print_final_stats=1 "$corpus"
echo "fuzz.sh: build $((built - start)) s, fuzzing ${seconds} s, nothing found"
