#!/usr/bin/env python3
"""What tf32 and bf16 GEMMs cost in accuracy, next to PyTorch's bf16 Muon (docs/cuda.md, Precision).

    python3 bench/precision_accuracy.py BUILD_DIR [OUT_DIR]

Runs `unit_tests "[.accuracy]"`, which runs modc's CUDA program for GPT-2 small's matrix shapes on
the host (the generated kernels compiled for the CPU, the GEMMs rounded as the tensor cores round
them: runtime/cuda/sim/tensor_cores.h) on Gaussian gradients and on gradients whose singular values
fall as 1/i and 1/i^2, and measures each update against modc's CPU backend in f64 with the same
schedule. Then runs Keller Jordan's zeropower_via_newtonschulz5 (Muon's iteration) in bf16 and in
f64 with torch on the CPU on the very same gradients, and prints one table: the relative
Frobenius error of each against f64.
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import torch

from muon import zeropower_via_newtonschulz5


def relative_error(got, ref):
    """As tests/unit/test_cuda.cpp's relative_error: Frobenius, after scaling by ref's largest entry."""
    unit = np.abs(ref).max() or 1.0
    return float(np.linalg.norm((got - ref) / unit) / np.linalg.norm(ref / unit))


def main():
    build = pathlib.Path(sys.argv[1])
    out = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else pathlib.Path(tempfile.mkdtemp())
    if not (out / "modc.json").exists():
        subprocess.run([str(build / "tests" / "unit_tests"), "[.accuracy]"], check=True,
                       env={"MODC_ACCURACY_OUT": str(out), "PATH": "/usr/bin:/bin"})
    modc = json.loads((out / "modc.json").read_text())
    spectra = {"gaussian": "Gaussian", "decay1": "1/i", "decay2": "1/i^2"}
    columns = [(s, p) for s in ("polar-express", "muon", "you", "cubic") for p in ("tf32", "bf16")]
    print("| gradient | weight | " + " | ".join(f"modc {s} {p}" for s, p in columns) + " | PyTorch muon bf16 |")
    print("|---" * (3 + len(columns)) + "|")
    for key, label in spectra.items():
        for path in sorted((out / key).glob("*.npy")):
            weight = path.stem
            g = torch.from_numpy(np.load(path).astype(np.float64))
            ref = zeropower_via_newtonschulz5(g, dtype=torch.float64).numpy()
            got = zeropower_via_newtonschulz5(g.float(), dtype=torch.bfloat16).double().numpy()
            torch_error = relative_error(got, ref)
            shape = "x".join(str(d) for d in g.shape)
            cells = []
            for s, p in columns:
                e = [r["error"] for r in modc if r["spectrum"] == key and r["schedule"] == s and r["precision"] == p
                     and r["weight"] == weight]
                cells.append(f"{e[0]:.2g}" if e else "-")
            print(f"| {label} | {weight} ({shape}) | " + " | ".join(cells) + f" | {torch_error:.2g} |")


if __name__ == "__main__":
    main()
