#!/usr/bin/python3
"""Accuracy of modc's CPU dualizer in f32 and with bf16 matmul inputs (--precision bf16), against
float64, next to PyTorch's bf16 Muon iteration on the same gradients.

    /usr/bin/python3 bench/bf16_accuracy.py [--modc build/modc] [--d 768] [--no-gram]

Three matrices, the shapes of a GPT-2 layer: d x d, 4d x d (tall: modc iterates on its
transpose) and d x 4d (wide: Gram Newton-Schulz), on gradients of several spectra. Per schedule
and spectrum, the largest spectral error over the three matrices of the update (divided by its
scale) against two float64 references:

  rounding: the same schedule iterated in float64 (NumPy; coefficients and normalisation read
            from `modc emit --emit plan`). This isolates what the precision costs; the schedule's
            own error (Muon leaves singular values in [0.7, 1.2]) cancels out.
  polar:    the exact polar factor U V^T (float64 SVD): what the update should be; the
            schedule's own error included (for `cubic` and `svd` the rounding column uses it).

PyTorch (Keller Jordan's zeropower_via_newtonschulz5: the iterate kept in bf16, 5 steps of
(3.4445, -4.7750, 2.0315), transposed when tall) is compared with modc's `muon` schedule, whose
float64 reference is the same iteration.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch

from muon import zeropower_via_newtonschulz5

SCHEDULES = ["muon", "polar-express", "you", "cubic", "svd"]
SPECTRA = {
    "gaussian": "Gaussian entries",
    "decay1": "singular values i^-1",
    "decay2": "singular values i^-2",
    "lowrank": "rank 16 + 1e-3 Gaussian noise",
    "rankdef": "exactly rank-deficient: half the singular values 1, the rest 0",
}


def gradient(kind, rows, cols, rng):
    if kind == "gaussian":
        return rng.standard_normal((rows, cols))
    k = min(rows, cols)
    u, _ = np.linalg.qr(rng.standard_normal((rows, k)))
    v, _ = np.linalg.qr(rng.standard_normal((cols, k)))
    i = np.arange(1, k + 1, dtype=np.float64)
    if kind == "decay1":
        s = 1 / i
    elif kind == "decay2":
        s = 1 / i**2
    elif kind == "rankdef":
        s = np.where(i <= k // 2, 1.0, 0.0)
    elif kind == "lowrank":
        s = np.where(i <= 16, 1.0, 0.0)
        return (u * s) @ v.T + 1e-3 * rng.standard_normal((rows, cols)) / np.sqrt(max(rows, cols))
    else:
        raise ValueError(kind)
    return (u * s) @ v.T


def polar(g):
    u, s, vt = np.linalg.svd(g, full_matrices=False)
    keep = s > max(g.shape) * np.finfo(np.float32).eps * s[0]  # as modc's svd schedule (f32 input)
    return (u[:, keep]) @ vt[keep, :]


def plan_schedule(modc, mod, schedule):
    """(norm_scale, eps, [(a, b, c)...]) of the schedule's first group, from `modc emit --emit plan`."""
    text = subprocess.run([modc, "emit", mod, "--emit", "plan", "--schedule", schedule], check=True, capture_output=True,
                          text=True).stdout
    group = text.split("group 1:")[0]
    norm = re.search(r"normalize by \|\|G\|\|_F \* (\S+) \+ (\S+)", group)
    steps = [tuple(float(v) for v in m) for m in re.findall(r"newton_schulz \((\S+), (\S+), (\S+)\)\n", group)]
    return float(norm.group(1)), float(norm.group(2)), steps


def iterate_f64(g, norm_scale, eps, steps):
    x = g / (np.linalg.norm(g) * norm_scale + eps)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    for a, b, c in steps:
        A = x @ x.T
        x = a * x + (b * A + c * A @ A) @ x
    return x.T if tall else x


def spectral(x):
    return float(np.linalg.norm(x, 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modc", default=os.path.join(os.path.dirname(__file__), "..", "build", "modc"))
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--schedules", default=",".join(SCHEDULES))
    parser.add_argument("--spectra", default=",".join(SPECTRA))
    parser.add_argument("--no-gram", action="store_true", help="pass --no-gram to modc")
    parser.add_argument("--precisions", default="f32,bf16", help="modc's --precision values to run (f32 only for a modc without bf16)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    d = args.d
    shapes = {"square": (d, d), "tall": (4 * d, d), "wide": (d, 4 * d)}
    scales = {"square": 1 / 3, "tall": 2 / 3, "wide": 1 / 6}  # sqrt(dout / din) / 3: modc explain
    with tempfile.TemporaryDirectory() as tmp:
        mod = os.path.join(tmp, "layer.mod")
        with open(mod, "w") as f:
            f.write("network layer(d = %d) = (Linear(d, 4 * d) as wide) @ (Linear(4 * d, d) as tall) @ (Linear(d, d) as square)\n" % d)
        print("| spectrum | schedule | f32 rounding | bf16 rounding | PyTorch bf16 rounding | f32 vs polar | bf16 vs polar | PyTorch bf16 vs polar |")
        print("|---|---|---|---|---|---|---|---|")
        for kind in args.spectra.split(","):
            grads = {name: gradient(kind, r, c, rng) for name, (r, c) in shapes.items()}
            gdir = os.path.join(tmp, "g_" + kind)
            os.makedirs(gdir)
            for name, g in grads.items():
                np.save(os.path.join(gdir, name + ".npy"), g.astype(np.float32))
            exact = {name: polar(g.astype(np.float32).astype(np.float64)) for name, g in grads.items()}
            torch_out = {name: zeropower_via_newtonschulz5(torch.from_numpy(g.astype(np.float32))).double().numpy() for name, g in grads.items()}
            for schedule in args.schedules.split(","):
                if schedule in ("svd", "cubic"):
                    reference = exact
                else:
                    norm_scale, eps, steps = plan_schedule(args.modc, mod, schedule)
                    reference = {name: iterate_f64(g.astype(np.float32).astype(np.float64), norm_scale, eps, steps)
                                 for name, g in grads.items()}
                row = {"f32": float("nan"), "f32_polar": float("nan"), "bf16": float("nan"), "bf16_polar": float("nan")}
                for precision in args.precisions.split(","):
                    out = os.path.join(tmp, "u_%s_%s_%s" % (kind, schedule, precision))
                    cmd = [args.modc, "dualize", mod, "--in", gdir, "--out", out, "--schedule", schedule, "--precision", precision]
                    if args.no_gram:
                        cmd.append("--no-gram")
                    subprocess.run(cmd, check=True)
                    updates = {name: np.load(os.path.join(out, name + ".npy")).astype(np.float64) / scales[name] for name in shapes}
                    row[precision] = max(spectral(updates[n] - reference[n]) for n in shapes)
                    row[precision + "_polar"] = max(spectral(updates[n] - exact[n]) for n in shapes)
                if schedule == "muon":
                    torch_rounding = "%.3g" % max(spectral(torch_out[n] - reference[n]) for n in shapes)
                    torch_polar = "%.3g" % max(spectral(torch_out[n] - exact[n]) for n in shapes)
                else:
                    torch_rounding = torch_polar = ""
                print("| %s | %s | %.3g | %.3g | %s | %.3g | %.3g | %s |" % (kind, schedule, row["f32"], row["bf16"], torch_rounding,
                                                                          row["f32_polar"], row["bf16_polar"], torch_polar))
                sys.stdout.flush()


if __name__ == "__main__":
    main()
