"""The optimizer blocks written with functions, the step count and statistics (examples/optimizers.mod:
adamw, lion, muon_cautious, normuon) through modc.torch.Optimizer.

`adamw` against torch.optim.AdamW itself, in f64 and f32, over steps with the learning rate changed in
between and a checkpoint restored midway (the step count, which Adam's bias corrections read, travels in
the state_dict). The others against `modc step` (tests/step/block_reference.py holds them to NumPy).
"""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from modc.torch import Optimizer  # noqa: E402
from conftest import MLP_SET, MLP_SHAPES, make_gradient  # noqa: E402

NP = {torch.float32: np.float32, torch.float64: np.float64}


@pytest.fixture(scope="module")
def mod(examples_dir):
    return os.path.join(examples_dir, "optimizers.mod")


def params(seed, dtype):
    rng = np.random.default_rng(seed)
    return {p: torch.nn.Parameter(torch.tensor(rng.standard_normal(s).astype(NP[dtype]))) for p, s in MLP_SHAPES.items()}


def set_grads(ps, rng, kinds, step):
    for j, (p, t) in enumerate(ps.items()):
        t.grad = torch.tensor(make_gradient(rng, kinds[(step + j) % len(kinds)], tuple(t.shape), NP[t.dtype]))


@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_adamw_is_torch_adamw(mod, dtype, tolerance):
    ours, theirs = params(0, dtype), params(0, dtype)
    opt = Optimizer(ours, mod, optimizer="adamw", set=MLP_SET, lr=1e-3, wd=0.1)
    ref = torch.optim.AdamW(theirs.values(), lr=1e-3, weight_decay=0.1)
    kinds = ["gaussian", "decay1", "lowrank", "zero", "decay2", "tiny"]
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for step in range(6):
        if step == 2:  # a schedule changes the rate between steps
            for o in (opt, ref):
                o.param_groups[0]["lr"] = 3e-4
        if step == 4:  # a checkpoint restored into a fresh optimizer continues the bias corrections
            state = opt.state_dict()
            assert state["modc_steps"] == 4
            opt = Optimizer(ours, mod, optimizer="adamw", set=MLP_SET, lr=3e-4, wd=0.1)
            opt.load_state_dict(state)
        set_grads(ours, rng_a, kinds, step)
        set_grads(theirs, rng_b, kinds, step)
        opt.step()
        ref.step()
        for p in MLP_SHAPES:
            a, b = ours[p].detach().double(), theirs[p].detach().double()
            assert torch.isfinite(a).all(), p
            err = (a - b).norm() / b.norm()
            assert err <= tolerance, (p, step, err.item())


def test_step_count_starts_at_one_and_must_be_a_count(mod):
    ps = params(1, torch.float64)
    opt = Optimizer(ps, mod, optimizer="adamw", set=MLP_SET)
    state = opt.state_dict()
    assert state["modc_steps"] == 0
    for bad in (-1, 1.5, "3", True):
        state["modc_steps"] = bad
        with pytest.raises(ValueError, match="modc_steps must be a step count"):
            opt.load_state_dict(state)


@pytest.mark.parametrize("name", ["lion", "muon_cautious", "normuon", "nanogpt"])
def test_blocks_match_modc_step(mod, run_modc, sets, tmp_path, name):
    """Two steps through the Python optimizer equal two `modc step` calls bit for bit."""
    from conftest import read_safetensors, write_safetensors
    ps = params(2, torch.float32)
    rng = np.random.default_rng(9)
    grads = [{p: make_gradient(rng, "gaussian", s, np.float32) for p, s in MLP_SHAPES.items()} for _ in range(2)]
    w_path = tmp_path / "w0.safetensors"
    write_safetensors(w_path, {p: t.detach().numpy() for p, t in ps.items()})
    opt = Optimizer(ps, mod, optimizer=name, set=MLP_SET)
    state = None
    for step, g in enumerate(grads):
        for p, t in ps.items():
            t.grad = torch.tensor(g[p])
        opt.step()
        g_path, out, out_state = tmp_path / f"g{step}.safetensors", tmp_path / f"w{step + 1}.safetensors", tmp_path / f"s{step + 1}.safetensors"
        write_safetensors(g_path, g)
        args = ["step", mod, *sets(MLP_SET), "--optimizer", name, "--weights", str(w_path), "--grads", str(g_path),
                "--out", str(out), "--out-state", str(out_state), "--step", str(step + 1)]
        if state:
            args += ["--state", str(state)]
        run_modc(*args)
        w_path, state = out, out_state
        got = read_safetensors(out)
        for p, t in ps.items():
            assert np.array_equal(got[p], t.detach().numpy()), (name, step, p)
