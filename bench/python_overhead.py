#!/usr/bin/python3
"""The cost of modc's Python layer over its C++ step, on the CPU (issue 12: at most 10%).

Three ways to take one optimizer step (Muon: momentum, then dualize) of the same network, run
interleaved (ABCABC...) in one process so that machine noise hits them alike:
  native   modc._modc.Optimizer.step on precomputed addresses: the C++ step and nothing else
           (the binding's list-to-pointer conversion and GIL release included);
  numpy    through modc's checks of NumPy arrays (modc.Optimizer is the torch one, so this
           runs the checks and addresses of modc._tensors plus native);
  torch    modc.torch.Optimizer.step(): hyperparameters from param_groups, gradient checks,
           addresses, the fallback-free step.
Prints the median per step and each layer's overhead over native.

Usage: PYTHONPATH=build/python bench/python_overhead.py [--network gpt2_blocks|small_mlp] [--set L=2] [--runs 5]
"""
import argparse
import os
import statistics
import time

import numpy as np
import torch

import modc
from modc import _modc
from modc._tensors import Tensors
from modc.torch import Optimizer

HERE = os.path.dirname(os.path.abspath(__file__))
MUON = "\noptimizer muon(lr = 0.02, beta = 0.95) {\n    m = beta * m + grad\n    W -= lr * dualize(m)\n}\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--network", default="gpt2_blocks")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE, e.g. L=2")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)  # PyTorch's OpenMP threads would fight OpenBLAS's
    with open(os.path.join(HERE, "gpt2_blocks.mod")) as f:
        text = f.read() + MUON
    sets = dict(s.split("=", 1) for s in args.set)

    native = _modc.compile_optimizer("gpt2_blocks.mod", text, "muon", args.network, sets, "polar-express", "cpu",
                                     "f32", True, 0)
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(w["shape"]).astype(np.float32) for w in native.weights]
    grads = [rng.standard_normal(w["shape"]).astype(np.float32) for w in native.weights]
    w_addr, g_addr = [w.ctypes.data for w in weights], [g.ctypes.data for g in grads]
    checks = Tensors([modc.Weight(w) for w in native.weights], "f32")
    paths = [w["path"] for w in native.weights]

    params = {p: torch.nn.Parameter(torch.from_numpy(w.copy())) for p, w in zip(paths, weights)}
    for p, g in zip(params.values(), grads):
        p.grad = torch.from_numpy(g)
    opt = Optimizer(params, text, optimizer="muon", network=args.network, set=sets)

    def run_native():
        native.step(w_addr, g_addr)

    def run_numpy():
        ws = checks.check(dict(zip(paths, weights)), "weights")
        gs = checks.check(dict(zip(paths, grads)), "gradients")
        native.step([a for _, a in ws], [a for _, a in gs])

    ways = {"native": run_native, "numpy": run_numpy, "torch": opt.step}
    times = {k: [] for k in ways}
    for f in ways.values():
        f()  # warm up
    for _ in range(args.runs):
        for k, f in ways.items():
            start = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - start)
    base = statistics.median(times["native"])
    print(f"network {args.network} {sets or ''}: {len(paths)} weights, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, torch {torch.__version__}, {args.runs} interleaved runs")
    for k, t in times.items():
        m = statistics.median(t)
        print(f"  {k:7s} {m * 1e3:9.2f} ms per step (median; min {min(t) * 1e3:.2f})   overhead {100 * (m / base - 1):+.2f}%")


if __name__ == "__main__":
    main()
