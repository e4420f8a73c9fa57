#!/usr/bin/env bash
# The installed modc as a user sees it (ctest: package): installs the build into a fresh prefix,
# configures examples/cpp against it with find_package(modc) (CMAKE_PREFIX_PATH only), builds
# train_steps (C++ API) and c_step (C API), and runs both. No LD_LIBRARY_PATH: the programs find
# the prefix's libmodc.so through their RPATH. Fails on any error.
#
#   test_package.sh SOURCE_DIR BUILD_DIR WORK_DIR [CMAKE] [C_COMPILER] [CXX_COMPILER]
#
# WORK_DIR is emptied first and kept afterwards (prefix/, build/, logs) for a look after a failure.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
work=$3
cmake=${4:-cmake}
compilers=()
[ -n "${5:-}" ] && compilers+=("-DCMAKE_C_COMPILER=$5")
[ -n "${6:-}" ] && compilers+=("-DCMAKE_CXX_COMPILER=$6")
unset LD_LIBRARY_PATH

fail() {
    echo "test_package: FAILED: $*" >&2
    exit 1
}

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
prefix=$work/prefix

echo "== install into $prefix"
"$cmake" --install "$build" --prefix "$prefix" > "$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
for f in include/modc/modc.hpp include/modc/modc.h bin/modc; do
    [ -e "$prefix/$f" ] || fail "$f was not installed"
done
lib=$(find "$prefix" -name 'libmodc.so.0' | head -n 1)
[ -n "$lib" ] || fail "libmodc.so.0 was not installed"
[ -n "$(find "$prefix" -name modcConfig.cmake)" ] || fail "modcConfig.cmake was not installed"
# The public headers include nothing of the project's own (they are all that is installed).
if grep -n '#include "' "$prefix/include/modc/modc.hpp" "$prefix/include/modc/modc.h"; then
    fail "an installed header includes a project header"
fi
"$prefix/bin/modc" --version

echo "== configure and build examples/cpp against the package"
"$cmake" -S "$src/examples/cpp" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" "${compilers[@]}" > "$work/configure.log" ||
    { cat "$work/configure.log"; fail "configuring examples/cpp"; }
"$cmake" --build "$work/build" || fail "building examples/cpp"

# Each program loads libmodc.so from the prefix, found through its RPATH.
# (ldd's output is read whole first: `ldd | grep -q` under pipefail fails when grep stops early.)
for program in c_step train_steps; do
    libraries=$(ldd "$work/build/$program")
    grep -q "libmodc.so.0 => $(dirname "$lib")/libmodc.so.0" <<< "$libraries" ||
        { echo "$libraries"; fail "$program does not load libmodc.so.0 from $prefix"; }
done

echo "== c_step"
"$work/build/c_step" || fail "c_step"

echo "== train_steps"
if [ -f "$src/examples/optimizers.mod" ]; then
    "$work/build/train_steps" "$src/examples/optimizers.mod" || fail "train_steps"
else
    echo "test_package: examples/optimizers.mod is missing: train_steps not run" >&2
    exit 77  # ctest: skipped
fi
echo "test_package: ok"
