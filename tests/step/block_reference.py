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
from step_reference import DTYPES, SETS, SHAPES, compare, gradient, norm, polar, read_safetensors, run, write_safetensors  # noqa: E402


def dualize(g, eps):
    dout, din = g.shape
    return np.sqrt(dout / din) / 3 * polar(g, eps)


def adamw(W, g, s, h, t, eps, path=None):
    # torch.optim.AdamW's step (decoupled decay, bias-corrected moments).
    W = W * (1 - h["lr"] * h["wd"])
    s["m"] = h["beta1"] * s["m"] + (1 - h["beta1"]) * g
    s["v"] = h["beta2"] * s["v"] + (1 - h["beta2"]) * g * g
    m_hat = s["m"] / (1 - h["beta1"] ** t)
    v_hat = s["v"] / (1 - h["beta2"] ** t)
    return W - h["lr"] * m_hat / (np.sqrt(v_hat) + h["eps"])


def lion(W, g, s, h, t, eps, path=None):
    # Chen et al. 2023, Algorithm 1.
    c = h["beta1"] * s["m"] + (1 - h["beta1"]) * g
    W = W * (1 - h["lr"] * h["wd"]) - h["lr"] * np.sign(c)
    s["m"] = h["beta2"] * s["m"] + (1 - h["beta2"]) * g
    return W


def muon_cautious(W, g, s, h, t, eps, path=None):
    s["m"] = h["beta"] * s["m"] + g
    u = dualize(g + h["beta"] * s["m"], eps)
    mask = (u * W) > 0  # the decay only where it moves W the way the step does
    W = W - h["lr"] * h["wd"] * W * mask
    return W - h["lr"] * u


def normuon(W, g, s, h, t, eps, path=None):
    s["m"] = h["beta"] * s["m"] + (1 - h["beta"]) * g
    u = dualize((1 - h["beta"]) * g + h["beta"] * s["m"], eps)
    s["v"] = h["beta2"] * s["v"] + (1 - h["beta2"]) * np.mean(u * u, axis=1, keepdims=True)
    n = u / np.sqrt(np.maximum(s["v"], h["eps"]))
    return W - h["lr"] * n * (np.linalg.norm(u) / max(np.linalg.norm(n), h["eps"]))


def nanogpt(W, g, s, h, t, eps, path):
    # The hidden matrix: NorMuon with cautious weight decay; the input and output layers: Adam.
    if path == "hidden":
        s["m"] = h["beta"] * s["m"] + (1 - h["beta"]) * g
        u = dualize((1 - h["beta"]) * g + h["beta"] * s["m"], eps)
        s["v"] = h["beta2"] * s["v"] + (1 - h["beta2"]) * np.mean(u * u, axis=1, keepdims=True)
        n = u / np.sqrt(np.maximum(s["v"], h["eps"]))
        n = n * (np.linalg.norm(u) / max(np.linalg.norm(n), h["eps"]))
        W = W - h["lr"] * h["wd"] * W * ((n * W) > 0)
        return W - h["lr"] * n
    s["m"] = h["beta1"] * s["m"] + (1 - h["beta1"]) * g
    s["v"] = h["adam_beta2"] * s["v"] + (1 - h["adam_beta2"]) * g * g
    return W - h["adam_lr"] / (1 - h["beta1"] ** t) * s["m"] / (np.sqrt(s["v"]) / np.sqrt(1 - h["adam_beta2"] ** t) + h["adam_eps"])


# name: (reference, state names, the hyperparameters of each step (one changes in between)).
OPTIMIZERS = {
    "adamw": (adamw, ["m", "v"], [dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.01),
                                  dict(lr=5e-4, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.01)]),
    "lion": (lion, ["m"], [dict(lr=1e-4, beta1=0.9, beta2=0.99, wd=0.1), dict(lr=3e-4, beta1=0.9, beta2=0.99, wd=0.1)]),
    "muon_cautious": (muon_cautious, ["m"], [dict(lr=0.02, beta=0.95, wd=0.1), dict(lr=0.01, beta=0.9, wd=0.2)]),
    "normuon": (normuon, ["m", "v"], [dict(lr=0.02, beta=0.95, beta2=0.95, eps=1e-10),
                                       dict(lr=0.01, beta=0.9, beta2=0.95, eps=1e-10)]),
    "nanogpt": (nanogpt, ["m", "v"], [dict(lr=0.02, beta=0.95, beta2=0.95, wd=0.1, eps=1e-10, adam_lr=0.008, beta1=0.8,
                                           adam_beta2=0.95, adam_eps=1e-10),
                                      dict(lr=0.01, beta=0.95, beta2=0.95, wd=0.1, eps=1e-10, adam_lr=0.004, beta1=0.8,
                                           adam_beta2=0.95, adam_eps=1e-10)]),
}


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
            ref_w[p] = reference(ref_w[p], grads[p].astype(np.float64), ref_s[p], h, step + 1, np.finfo(np_dtype).eps, p)
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
            worst = max(worst, compare(pairs, np_dtype, tolerance, f"{name} {dtype} step {step + 1} ({kinds})"))
        w_path, state_path = out_w, out_s
    print(f"{name} {dtype} {kinds}: {steps} steps, worst relative error {worst:.3g} (tolerance {tolerance})")


# Rules on a network with Linear, Embed and Gain weights: the first rule that selects a weight
# runs it (head is a Linear, selected by path before `for Linear`), each rule keeps its own state
# (hidden has no v), and the weight's numbers (fan_in, fan_out, target, scale) reach the step.
RULES_MOD = """
network n(vocab = 20, d = 8) = (Linear(vocab, d) as head) @ (Gain(d) as gain) @ ReLU @ (Linear(d, d) as hidden)
                             @ (Embed(d, vocab) as embed)
optimizer mixed(lr = 0.02, beta = 0.9, adam_lr = 0.01, beta1 = 0.9, beta2 = 0.99, eps = 1e-8) {
    for head, Embed, Gain {
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        W -= adam_lr / (1 - beta1 ^ step) * m / (sqrt(v) / sqrt(1 - beta2 ^ step) + eps)
    }
    for Linear {
        m = beta * m + grad
        W -= lr * (1 + fan_in / (fan_out + 1)) * target / scale * dualize(grad + beta * m)
    }
}
"""
RULES_SHAPES = {"embed": (8, 20), "hidden": (8, 8), "gain": (8,), "head": (20, 8)}


def check_rules(modc, dtype, tolerance, work):
    np_dtype = DTYPES[dtype]
    mod = os.path.join(work, "rules.mod")
    with open(mod, "w") as f:
        f.write(RULES_MOD)
    rng = np.random.default_rng(31)
    weights = {p: rng.standard_normal(s).astype(np_dtype) for p, s in RULES_SHAPES.items()}
    ref_w = {p: w.astype(np.float64) for p, w in weights.items()}
    ref_s = {p: {k: np.zeros(s) for k in (["m"] if p == "hidden" else ["m", "v"])} for p, s in RULES_SHAPES.items()}
    hypers = [dict(lr=0.02, adam_lr=0.01), dict(lr=0.01, adam_lr=0.003)]
    w_path, state_path = os.path.join(work, f"rules_w0_{dtype}.safetensors"), None
    write_safetensors(w_path, weights)
    worst = 0.0
    for step in range(4):
        h = dict(beta=0.9, beta1=0.9, beta2=0.99, eps=1e-8, **hypers[step % 2])
        grads = {p: gradient(rng, "gaussian" if step % 2 else "decay1", s if len(s) == 2 else (1, s[0])).reshape(s).astype(np_dtype)
                 for p, s in RULES_SHAPES.items()}
        g_path = os.path.join(work, f"rules_g{step}_{dtype}.safetensors")
        write_safetensors(g_path, grads)
        out_w, out_s = (os.path.join(work, f"rules_{n}{step + 1}_{dtype}.safetensors") for n in ("w", "s"))
        cmd = [modc, "step", mod, "--schedule", "svd", "--weights", w_path, "--grads", g_path, "--out", out_w,
               "--out-state", out_s, "--step", str(step + 1), *[f"--hyper={k}={v}" for k, v in hypers[step % 2].items()]]
        run(cmd + (["--state", state_path] if state_path else []))
        t = step + 1
        before = {p: w.copy() for p, w in ref_w.items()}
        for p in RULES_SHAPES:
            g, s = grads[p].astype(np.float64), ref_s[p]
            if p == "hidden":  # the Linear rule; target 1/4, scale 1/4, fan_in = fan_out = 8
                s["m"] = h["beta"] * s["m"] + g
                ref_w[p] = ref_w[p] - h["lr"] * (1 + 8 / 9) * 0.25 * polar(g + h["beta"] * s["m"], np.finfo(np_dtype).eps)
            else:
                s["m"] = h["beta1"] * s["m"] + (1 - h["beta1"]) * g
                s["v"] = h["beta2"] * s["v"] + (1 - h["beta2"]) * g * g
                ref_w[p] = ref_w[p] - h["adam_lr"] / (1 - h["beta1"] ** t) * s["m"] / (
                    np.sqrt(s["v"]) / np.sqrt(1 - h["beta2"] ** t) + h["eps"])
        got_w, got_s = read_safetensors(out_w), read_safetensors(out_s)
        want_states = {f"{k}/{p}" for p in RULES_SHAPES for k in ref_s[p]}
        assert set(got_s) == want_states, sorted(got_s)  # each weight its rule's state, no more
        for p in RULES_SHAPES:
            size = norm(ref_w[p] - before[p]) if dtype == "F64" else norm(ref_w[p])
            pairs = [(p, got_w[p], ref_w[p], size)] + [(f"{k}/{p}", got_s[f"{k}/{p}"], ref_s[p][k], norm(ref_s[p][k])) for k in ref_s[p]]
            worst = max(worst, compare(pairs, np_dtype, tolerance, f"rules {dtype} step {t}"))
        w_path, state_path = out_w, out_s
    print(f"rules (Linear, Embed, Gain) {dtype}: 4 steps, worst relative error {worst:.3g} (tolerance {tolerance})")


def main():
    modc, examples = sys.argv[1], sys.argv[2]
    kinds = ["decay1", "decay2", "lowrank", "rankdeficient", "huge", "tiny", "zero", "gaussian"]
    with tempfile.TemporaryDirectory() as work:
        for name in OPTIMIZERS:
            check(modc, examples, name, "F64", kinds, 1e-10, work)
            # f32: 1e-5 of the step (the bar); the polar factor of an f32 gradient is only as
            # good as its conditioning allows (step_reference.py), so f32 runs well-conditioned kinds.
            check(modc, examples, name, "F32", ["gaussian", "decay1", "lowrank", "zero"], 1e-5, work)
        check_rules(modc, "F64", 1e-10, work)
        check_rules(modc, "F32", 1e-5, work)
    print("ok")


if __name__ == "__main__":
    main()
