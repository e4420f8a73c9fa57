#!/usr/bin/env python3
"""Launches, atomics and bytes of one dualize on the GPU, for two builds of modc side by side.

    bench/cuda_cost_table.py OLD/modc NEW/modc      (run from the repository root)

prints the before/after table of docs/cuda.md ("Fewer kernels"), from `modc emit FILE --emit
cost --json --precision P` and `--emit cuda` of examples/gpt.mod and bench/gpt2_blocks.mod in
f32, tf32 and bf16. No GPU needed."""
import json
import re
import subprocess
import sys

before, after = sys.argv[1], sys.argv[2]
nets = [("examples/gpt.mod", []), ("bench/gpt2_blocks.mod", ["--network", "gpt2_blocks"])]
def emit(modc, f, extra, p, what):
    return subprocess.run([modc, "emit", f, "--emit", what, "--precision", p] + extra + (["--json"] if what == "cost" else []),
                          check=True, capture_output=True, text=True).stdout
def atomics(modc, f, extra, p, cost):
    # atomicAdds onto shared sums by the reductions (sums of squares, convergence): one per thread
    # that has a partial sum, or one per block where the kernel sums the block first.
    src = emit(modc, f, extra, p, "cuda")
    per_block = {k for k in re.findall(r"void __launch_bounds__\(\d+\) (\w+)\(", src)
                 if re.search(r"void __launch_bounds__\(\d+\) " + k + r"\((?:(?!\n}\n).)*threadIdx.x == 0\) modc_ssq_flush", src, re.S)}
    n = 0
    for op in cost["ops"]:
        if op["kind"] == "kernel" and op["name"].endswith("_sumsq"):
            grid, threads = op["shape"].split(" x ")
            blocks = 1
            for g in grid.split("x"): blocks *= int(g)
            n += blocks * (1 if op["name"] in per_block else int(threads))
    return n
print("| network | precision | kernels | cuBLAS calls | atomics on sums | bytes moved | modelled H100 time |")
print("|---|---|---|---|---|---|---|")
for f, extra in nets:
    for p in ["f32", "tf32", "bf16"]:
        cb, ca = json.loads(emit(before, f, extra, p, "cost")), json.loads(emit(after, f, extra, p, "cost"))
        b, a = cb["total"], ca["total"]
        gb = lambda t: (t["bytes_read"] + t["bytes_written"]) / 1e9
        print(f"| {f} | {p} | {b['kernels']} -> {a['kernels']} | {b['cublas_calls']} -> {a['cublas_calls']} | "
              f"{atomics(before, f, extra, p, cb)} -> {atomics(after, f, extra, p, ca)} | "
              f"{gb(b):.2f} -> {gb(a):.2f} GB | {b['modelled_ms']:.2f} -> {a['modelled_ms']:.2f} ms |")
