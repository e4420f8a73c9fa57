#!/usr/bin/env python3
"""The optimizers of examples/optimizers.mod written with functions, the step count and
statistics (adamw, lion, muon_cautious, normuon) through `modc step`, against NumPy float64
implementations written here from their papers, independently of modc's plan.

Four steps each, the state carried through --state / --out-state, a hyperparameter changed
between steps, f32 and f64, on gradients that are not only Gaussian (tests/step/step_reference.py
makes them). The MLP of optimizers.mod has three Linear weights; their target is 1/3 and
dualize(G) = sqrt(dout / din) / 3 * polar(G) under the svd schedule.

Usage: block_reference.py MODC EXAMPLES_DIR
"""
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step_reference import SETS, SHAPES, gradient, polar, read_safetensors, run, write_safetensors  # noqa: E402


def dualize(g, eps):
    dout, din = g.shape
    return np.sqrt(dout / din) / 3 * polar(g, eps)


def adamw(W, g, s, h, t, eps):
    # torch.optim.AdamW's step (decoupled decay, bias-corrected moments).
    W = W * (1 - h["lr"] * h["wd"])
    s["m"] = h["beta1"] * s["m"] + (1 - h["beta1"]) * g
    s["v"] = h["beta2"] * s["v"] + (1 - h["beta2"]) * g * g
    m_hat = s["m"] / (1 - h["beta1"] ** t)
    v_hat = s["v"] / (1 - h["beta2"] ** t)
    return W - h["lr"] * m_hat / (np.sqrt(v_hat) + h["eps"])


def lion(W, g, s, h, t, eps):
    # Chen et al. 2023, Algorithm 1.
    c = h["beta1"] * s["m"] + (1 - h["beta1"]) * g
    W = W * (1 - h["lr"] * h["wd"]) - h["lr"] * np.sign(c)
    s["m"] = h["beta2"] * s["m"] + (1 - h["beta2"]) * g
    return W


def muon_cautious(W, g, s, h, t, eps):
    s["m"] = h["beta"] * s["m"] + g
    u = dualize(g + h["beta"] * s["m"], eps)
    mask = (u * W) > 0  # the decay only where it moves W the way the step does
    W = W - h["lr"] * h["wd"] * W * mask
    return W - h["lr"] * u


def normuon(W, g, s, h, t, eps):
    s["m"] = h["beta"] * s["m"] + (1 - h["beta"]) * g
    u = dualize((1 - h["beta"]) * g + h["beta"] * s["m"], eps)
    s["v"] = h["beta2"] * s["v"] + (1 - h["beta2"]) * np.mean(u * u, axis=1, keepdims=True)
    n = u / np.sqrt(np.maximum(s["v"], h["eps"]))
    return W - h["lr"] * n * (np.linalg.norm(u) / max(np.linalg.norm(n), h["eps"]))


# name: (reference, state names, the hyperparameters of each step (one changes in between)).
OPTIMIZERS = {
    "adamw": (adamw, ["m", "v"], [dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.01),
                                  dict(lr=5e-4, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.01)]),
    "lion": (lion, ["m"], [dict(lr=1e-4, beta1=0.9, beta2=0.99, wd=0.1), dict(lr=3e-4, beta1=0.9, beta2=0.99, wd=0.1)]),
    "muon_cautious": (muon_cautious, ["m"], [dict(lr=0.02, beta=0.95, wd=0.1), dict(lr=0.01, beta=0.9, wd=0.2)]),
    "normuon": (normuon, ["m", "v"], [dict(lr=0.02, beta=0.95, beta2=0.95, eps=1e-10),
                                       dict(lr=0.01, beta=0.9, beta2=0.95, eps=1e-10)]),
}
DTYPES = {"F32": np.float32, "F64": np.float64}


def norm(x):
    """The Frobenius norm without overflow (second moments of huge gradients reach 1e200)."""
    x = np.asarray(x, dtype=np.float64)
    big = np.abs(x).max() if x.size else 0.0
    return 0.0 if big == 0 else big * np.linalg.norm(x / big)


def check(modc, examples, name, dtype, kinds, tolerance, work, steps=4):
    reference, states, hypers = OPTIMIZERS[name]
    np_dtype = DTYPES[dtype]
    rng = np.random.default_rng(23)
    weights = {p: rng.standard_normal(s).astype(np_dtype) for p, s in SHAPES.items()}
    ref_w = {p: w.astype(np.float64) for p, w in weights.items()}
    ref_s = {p: {k: np.zeros(s) for k in states} for p, s in SHAPES.items()}
    w_path = os.path.join(work, f"{name}_w0_{dtype}.safetensors")
    write_safetensors(w_path, weights)
    state_path, worst = None, 0.0
    for step in range(steps):
        h = hypers[step % len(hypers)]
        grads = {}
        for j, (p, s) in enumerate(SHAPES.items()):
            g = gradient(rng, kinds[(step + j) % len(kinds)], s)
            # Huge gradients at 1e100 in f64 (1e30 in f32): Adam squares them, as torch does, so
            # 1e150 would overflow there in any implementation.
            if np.abs(g).max() > 1e90:
                g = g / 1e150 * (1e30 if dtype == "F32" else 1e100)
            grads[p] = g.astype(np_dtype)
        g_path = os.path.join(work, f"{name}_g{step}_{dtype}.safetensors")
        write_safetensors(g_path, grads)
        out_w = os.path.join(work, f"{name}_w{step + 1}_{dtype}.safetensors")
        out_s = os.path.join(work, f"{name}_s{step + 1}_{dtype}.safetensors")
        cmd = [modc, "step", os.path.join(examples, "optimizers.mod"), *SETS, "--optimizer", name, "--schedule", "svd",
               "--weights", w_path, "--grads", g_path, "--out", out_w, "--out-state", out_s]
        cmd += [f"--hyper={k}={v}" for k, v in h.items()]
        if state_path:
            cmd += ["--state", state_path, "--step", str(step + 1)]
        run(cmd)
        before = {p: w.copy() for p, w in ref_w.items()}
        for p in SHAPES:
            ref_w[p] = reference(ref_w[p], grads[p].astype(np.float64), ref_s[p], h, step + 1, np.finfo(np_dtype).eps)
        got_w, got_s = read_safetensors(out_w), read_safetensors(out_s)
        for p in SHAPES:
            # f64: relative to the size of the step (not of W, which would hide errors), plus what storing
            # W costs by itself at each step. f32: relative to W (the 1e-5), since storing a
            # weight near 1 in f32 already moves it by 6e-8, 6e-5 of a 1e-3 step.
            stored = 4 * np.finfo(np_dtype).eps * norm(ref_w[p]) * (step + 1)
            size = norm(ref_w[p] - before[p]) + stored if dtype == "F64" else norm(ref_w[p])
            pairs = [(p, got_w[p], ref_w[p], size)]
            for k in states:
                want = np.broadcast_to(ref_s[p][k], SHAPES[p])  # a row statistic is kept for every entry
                pairs.append((f"{k}/{p}", got_s[f"{k}/{p}"], want, norm(want)))
            for what, got, want, size in pairs:
                assert got.dtype == np_dtype and got.shape == want.shape, (what, got.dtype, got.shape)
                err = norm(got.astype(np.float64) - want) / max(size, 1e-300)
                worst = max(worst, err)
                if not err <= tolerance:
                    sys.exit(f"FAILED: {name} {dtype} step {step + 1} {what} ({kinds}): relative error {err:.3g} > {tolerance}")
        w_path, state_path = out_w, out_s
    print(f"{name} {dtype} {kinds}: {steps} steps, worst relative error {worst:.3g} (tolerance {tolerance})")


def main():
    modc, examples = sys.argv[1], sys.argv[2]
    kinds = ["decay1", "decay2", "lowrank", "rankdeficient", "huge", "tiny", "zero", "gaussian"]
    with tempfile.TemporaryDirectory() as work:
        for name in OPTIMIZERS:
            check(modc, examples, name, "F64", kinds, 1e-10, work)
            # f32: 1e-5 of the step (the bar); the polar factor of an f32 gradient is only as
            # good as its conditioning allows (step_reference.py), so f32 runs well-conditioned kinds.
            check(modc, examples, name, "F32", ["gaussian", "decay1", "lowrank", "zero"], 1e-5, work)
    print("ok")


if __name__ == "__main__":
    main()
