#!/usr/bin/env bash
# `pip install .` as a Python user runs it: a fresh virtual environment (from /usr/bin/python3,
# without the system's site-packages: only what pyproject.toml asks for), the package built by
# scikit-build-core from the repository, then imported from outside the repository and used.
#
# Usage: tests/python/pip_install.sh [SOURCE_DIR]     (needs PyPI for scikit-build-core,
# pybind11 and numpy; takes a few minutes: it builds modc from scratch). Exit 77: no venv/pip.
set -euo pipefail
source_dir=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
python=${MODC_PIP_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

start=$SECONDS
if ! "$python" -m venv "$work/venv" >"$work/venv.log" 2>&1; then
  cat "$work/venv.log"
  echo "SKIP: $python -m venv failed (python3-venv missing?)"
  exit 77
fi
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
# The build's own files (its temporary build folder) stay out of the repository.
"$work/venv/bin/python" -m pip install --quiet "$source_dir"
echo "pip install: $((SECONDS - start)) s"
# The wheel holds the package and its metadata only (component python: no modc command, no
# libmodc.so, no headers, no second copy of python/modc).
files=$("$work/venv/bin/python" -m pip show --files modc | sed -n '/^Files:/,$p' | tail -n +2 | sed 's/^ *//')
echo "$files"
if echo "$files" | grep -v -E '^(modc/|modc-0\.1\.0\.dist-info/)' | grep -q .; then
  echo "FAILED: files outside modc/ in the wheel"
  exit 1
fi
echo "$files" | grep -q -E '^modc/_modc\..*\.so$' || { echo "FAILED: no modc/_modc extension"; exit 1; }

cd "$work"
"$work/venv/bin/python" - "$source_dir" <<'PY'
import os, sys
import numpy as np
import modc

source = sys.argv[1]
assert not modc.__file__.startswith(source), f"modc imported from the repository: {modc.__file__}"
assert os.path.basename(os.path.dirname(modc.__file__)) == "modc"
d = modc.compile(os.path.join(source, "examples", "mlp.mod"), set={"pixels": 48, "width": 32, "classes": 10})
print(d)
grads = {w.path: np.random.default_rng(0).standard_normal(w.shape).astype(np.float32) for w in d.weights}
updates = d.dualize(grads)
for w in d.weights:
    u = updates[w.path]
    assert u.shape == w.shape and u.dtype == np.float32 and np.isfinite(u).all(), w.path
    # Linear under RMS -> RMS: the update is its scale times a matrix whose singular values are about 1.
    s = np.linalg.svd(u.astype(np.float64), compute_uv=False)
    assert 0.5 < s.max() / w.scale < 1.5, (w.path, s.max(), w.scale)
print("installed:", modc.__file__)
print("ok")
PY
echo "total: $((SECONDS - start)) s"
