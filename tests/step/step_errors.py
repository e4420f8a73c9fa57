#!/usr/bin/env python3
"""`modc step` refuses bad input: a clear message naming the problem, exit 1, nothing written.

Usage: step_errors.py MODC EXAMPLES_DIR
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from step_reference import SETS, SHAPES, read_safetensors, write_safetensors  # noqa: E402

FAILURES = []


def expect_error(name, modc, args, message, outputs):
    result = subprocess.run([modc, "step", *args], capture_output=True, text=True)
    problems = []
    if result.returncode != 1:
        problems.append(f"exit {result.returncode}, not 1")
    if message not in result.stderr:
        problems.append(f"stderr lacks {message!r}")
    problems += [f"{o} was written" for o in outputs if os.path.exists(o)]
    if problems:
        FAILURES.append(f"{name}: {'; '.join(problems)}\n  stderr: {result.stderr.strip()}")
    else:
        print(f"ok: {name}")


def main():
    modc, examples = sys.argv[1], sys.argv[2]
    mod = os.path.join(examples, "optimizers.mod")
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as work:
        def path(name):
            return os.path.join(work, name)

        def tensors(name, values):
            write_safetensors(path(name), values)
            return path(name)

        good = {p: rng.standard_normal(s) for p, s in SHAPES.items()}
        w, g = tensors("w.safetensors", good), tensors("g.safetensors", good)
        out, out_state = path("out.safetensors"), path("state.safetensors")
        base = [mod, *SETS, "--optimizer", "nesterov_wd", "--out", out, "--out-state", out_state]
        outputs = [out, out_state]

        def case(name, args, message):
            expect_error(name, modc, base + args, message, outputs)

        missing = dict(good)
        del missing["hidden"]
        case("a missing gradient", ["--weights", w, "--grads", tensors("g1.safetensors", missing)], "hidden")
        misshapen = dict(good, output=rng.standard_normal((32, 10)))
        case("a misshapen weight", ["--weights", tensors("w1.safetensors", misshapen), "--grads", g], "output")
        nan = dict(good, input=np.full(SHAPES["input"], np.nan))
        case("a NaN gradient", ["--weights", w, "--grads", tensors("g2.safetensors", nan)], "input")
        f32 = {p: v.astype(np.float32) for p, v in good.items()}
        case("weights and gradients of two dtypes", ["--weights", tensors("w2.safetensors", f32), "--grads", g],
             "the weights are F32 but the gradients are F64")
        case("an unknown hyperparameter", ["--weights", w, "--grads", g, "--hyper", "betta=0.9"],
             "has no hyperparameter 'betta'; did you mean 'beta'?")
        case("a hyperparameter that is not a number", ["--weights", w, "--grads", g, "--hyper", "lr=fast"],
             "--hyper expects NAME=NUMBER")
        expect_error("an unknown optimizer", modc, [mod, *SETS, "--optimizer", "nesterov_dw", "--weights", w, "--grads",
                                                    g, "--out", out], "no optimizer 'nesterov_dw'; did you mean 'nesterov_wd'?",
                     [out])
        state = {f"m/{p}": v for p, v in good.items()}
        del state["m/output"]
        case("an incomplete state", ["--weights", w, "--grads", g, "--state", tensors("s1.safetensors", state)],
             "m/output")
        state = {f"v/{p}": v for p, v in good.items()}
        case("a state the optimizer does not have", ["--weights", w, "--grads", g, "--state",
                                                     tensors("s2.safetensors", state)], "v/input")
        case("a missing file", ["--weights", path("nowhere.safetensors"), "--grads", g], "nowhere.safetensors")
        case("a step count below 1", ["--weights", w, "--grads", g, "--step", "0"],
             "--step counts from 1 (the first step), got 0; nothing was written")
        def mod_file(name, text):
            with open(path(name), "w") as f:
                f.write("network mlp = (Linear(10, 32) as output) @ ReLU @ (Linear(32, 32) as hidden) @ ReLU"
                        " @ (Linear(32, 48) as input)\n" + text)
            return path(name)

        for name, text, message in [
            ("a file without an optimizer", "", "the file defines no optimizer block"),
            ("an ill-typed optimizer", "optimizer sgd(lr = 0.1) {\n    W -= lr * grad\n}\n", "ill-typed update"),
            ("a default that is not a number", "optimizer sgd(lr = width) {\n    W -= lr * dualize(grad)\n}\n",
             "must be a finite number"),
            ("several optimizers and none chosen",
             "optimizer a(lr = 0.1) {\n    W -= lr * dualize(grad)\n}\noptimizer b(lr = 0.1) {\n"
             "    W -= lr * dualize(grad)\n}\n", "several optimizers (a, b); choose one"),
        ]:
            expect_error(name, modc, [mod_file(name.replace(" ", "_") + ".mod", text), "--weights", w, "--grads", g,
                                      "--out", out, "--out-state", out_state], message, outputs)

        # A block with rules: each weight has its rule's state; another rule's state is refused, by name.
        ruled = mod_file("ruled.mod", "optimizer ruled(lr = 0.1, beta = 0.9) {\n"
                                      "    for hidden {\n        m = beta * m + grad\n        W -= lr * dualize(m)\n    }\n"
                                      "    for Linear {\n        W -= lr * sign(grad)\n    }\n}\n")
        every = tensors("s3.safetensors", {f"m/{p}": v for p, v in good.items()})
        expect_error("another rule's state", modc, [ruled, "--weights", w, "--grads", g, "--state", every, "--out", out,
                                                   "--out-state", out_state], "m/input", outputs)

        # A hyperparameter without a default must be given.
        no_default = mod_file("no_default.mod", "optimizer sgd(lr) {\n    W -= lr * dualize(grad)\n}\n")
        expect_error("a hyperparameter without a default", modc, [no_default, "--weights", w, "--grads", g,
                                                                   "--out", out], "'lr' of optimizer 'sgd' has no default",
                     [out])
        result = subprocess.run([modc, "step", no_default, "--weights", w, "--grads", g, "--out", out, "--hyper",
                                 "lr=0.5"], capture_output=True, text=True)
        if result.returncode != 0 or set(read_safetensors(out)) != set(SHAPES):
            FAILURES.append(f"--hyper lr=0.5 on a block without a default: {result.stderr}")
    if FAILURES:
        sys.exit("FAILED:\n" + "\n".join(FAILURES))
    print("ok")


if __name__ == "__main__":
    main()
