#!/usr/bin/env bash
# The README's commands in the order a newcomer runs them, each checked: set-up and the main job,
# the tests (strict: a skip for want of a package fails), the Python install line with the README's
# training snippet, and a minute of fuzzing (clang-14 and its runtime come from setup.sh too).
# CI runs it in a fresh Debian 12 (scripts/fresh_debian.sh); it runs anywhere setup.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
explained=$(mktemp)
trap 'rm -f "$explained"' EXIT
bash scripts/setup.sh && build/modc explain examples/gpt.mod | tee "$explained"
grep -q -E '^ +modular norm ' "$explained" && grep -q -E '^ +#  path +shape +norm +map +target' "$explained" ||
  { echo "newcomer.sh: modc explain printed no derivation table" >&2; exit 1; }
t1=$SECONDS
MODC_TEST_STRICT=1 bash scripts/test.sh
t2=$SECONDS
python3 -m venv --system-site-packages venv && venv/bin/pip install .
venv/bin/python tests/python/readme_snippet.py
t3=$SECONDS
bash scripts/fuzz.sh 60
t4=$SECONDS
echo "newcomer.sh: set-up $((t1 - t0)) s, tests $((t2 - t1)) s, pip install + snippet $((t3 - t2)) s, fuzzing $((t4 - t3)) s"
