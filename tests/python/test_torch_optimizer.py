"""modc.torch.Optimizer: the optimizer block of a .mod file as a torch.optim.Optimizer.

Its step is `modc step`'s, bit for bit (the same compiled code on the same numbers); its
state_dict carries the block's state and the fallback's; schedulers drive its hyperparameters;
bad input is refused with a message naming what is wrong.
"""
import copy
import io
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import modc  # noqa: E402
from modc.torch import Optimizer  # noqa: E402
from conftest import KINDS, MLP_SET, MLP_SHAPES, make_gradient, read_safetensors, same_bits, write_safetensors  # noqa: E402

NP = {torch.float32: np.float32, torch.float64: np.float64}
RENAME = {"0.weight": "input", "2.weight": "hidden", "4.weight": "output"}


@pytest.fixture(scope="module")
def mod(examples_dir):
    return os.path.join(examples_dir, "optimizers.mod")


def weights(rng, dtype):
    return {p: rng.standard_normal(s).astype(NP[dtype]) for p, s in MLP_SHAPES.items()}


def grads_of(rng, dtype, step):
    return {p: make_gradient(rng, KINDS[(step + j) % len(KINDS)], s, NP[dtype]) for j, (p, s) in enumerate(MLP_SHAPES.items())}


def params_of(arrays):
    # Copies in torch's own memory, not from_numpy views: torch 1.13 keeps the graph of a failed
    # backward in a thread-local until exit, where freeing a NumPy-owned tensor deadlocks on the GIL.
    return {p: torch.nn.Parameter(torch.tensor(a)) for p, a in arrays.items()}


def model(dtype=torch.float64, seed=0):
    """The MLP of optimizers.mod (small) in PyTorch, with biases (not in the .mod file)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(48, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 10)).to(dtype)


def batch(seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 48, generator=g, dtype=dtype), torch.randint(0, 10, (16,), generator=g)


def train_step(net, opt, seed):
    x, y = batch(seed, next(net.parameters()).dtype)
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def adam(params):
    return torch.optim.Adam(params, lr=1e-3)


# One step and two, against `modc step` with the state carried through files.

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_same_as_modc_step(mod, run_modc, sets, tmp_path, dtype):
    rng = np.random.default_rng(5)
    w0 = weights(rng, dtype)
    hyper = {"lr": 0.05, "beta": 0.9, "wd": 0.1}
    params = params_of(w0)
    opt = Optimizer(params, mod, optimizer="nesterov_wd", set=MLP_SET, **hyper)
    assert opt.param_groups[0]["lr"] == 0.05 and opt.hyper_names == ["lr", "beta", "wd"]

    w_path, state = str(tmp_path / "w0.safetensors"), None
    write_safetensors(w_path, w0)
    for step in range(2):
        g = grads_of(rng, dtype, step)
        g_path, out, out_state = (str(tmp_path / f"{n}{step}.safetensors") for n in ("g", "w", "s"))
        write_safetensors(g_path, g)
        cmd = ["step", mod, *sets(MLP_SET), "--optimizer", "nesterov_wd", "--weights", w_path, "--grads", g_path,
               "--out", out, "--out-state", out_state, *[f"--hyper={k}={v}" for k, v in hyper.items()]]
        run_modc(*cmd, *(["--state", state] if state else []))
        w_path, state = out, out_state

        for p, t in params.items():
            t.grad = torch.from_numpy(g[p].copy())
        opt.step()

        want_w, want_s = read_safetensors(out), read_safetensors(out_state)
        got_s = opt.state_dict()["state"]
        for i, (p, t) in enumerate(opt.weights):
            assert same_bits(t.detach().numpy(), want_w[p]), (step, p)
            assert same_bits(got_s[i]["m"].numpy(), want_s[f"m/{p}"]), (step, f"m/{p}")
            assert not np.array_equal(want_w[p], w0[p])


# state_dict / load_state_dict: a fresh optimizer continues exactly as the original.

def test_state_dict_round_trip(mod):
    net = model()
    opt = Optimizer(net.named_parameters(), mod, optimizer="nesterov_wd", set=MLP_SET, rename=RENAME, fallback=adam,
                    lr=0.03)
    for s in range(2):
        train_step(net, opt, s)
    buffer = io.BytesIO()
    torch.save({"model": net.state_dict(), "opt": opt.state_dict()}, buffer)

    sd = opt.state_dict()
    assert sorted(sd) == ["fallback", "modc_steps", "param_groups", "state"]
    assert sd["modc_steps"] == 2 and sd["param_groups"][0]["lr"] == 0.03
    assert sorted(sd["state"]) == [0, 1, 2] and all(sorted(v) == ["m"] for v in sd["state"].values())
    assert any(torch.count_nonzero(v["m"]) for v in sd["state"].values())
    assert len(sd["fallback"]["state"]) == 3  # Adam's moments of the three biases

    buffer.seek(0)
    saved = torch.load(buffer)
    fresh = model(seed=1)
    fresh.load_state_dict(saved["model"])
    opt2 = Optimizer(fresh.named_parameters(), mod, optimizer="nesterov_wd", set=MLP_SET, rename=RENAME,
                     fallback=adam)
    assert opt2.param_groups[0]["lr"] == 0.02  # the block's default, until loaded
    opt2.load_state_dict(saved["opt"])
    assert opt2.param_groups[0]["lr"] == 0.03

    for s in range(2, 5):
        assert train_step(net, opt, s) == train_step(fresh, opt2, s)
    for (name, a), (_, b) in zip(net.named_parameters(), fresh.named_parameters()):
        assert same_bits(a.detach().numpy(), b.detach().numpy()), name
    for a, b in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values()):
        assert same_bits(a["m"].numpy(), b["m"].numpy())


def test_state_dict_without_state_is_refused(mod):
    opt = Optimizer(params_of(weights(np.random.default_rng(0), torch.float32)), mod, optimizer="muon", set=MLP_SET)
    sd = opt.state_dict()
    del sd["state"][1]
    with pytest.raises(ValueError, match="no state 'm' for weight 'hidden'"):
        opt.load_state_dict(sd)


# Schedulers change param_groups[0]; the step reads it.

def test_lr_scheduler_scales_the_step(mod):
    rng = np.random.default_rng(6)
    params = params_of(weights(rng, torch.float64))
    g = grads_of(rng, torch.float64, 0)
    opt = Optimizer(params, mod, optimizer="sgd_dual", set=MLP_SET, lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = [{p: t.detach().clone() for p, t in params.items()}]
    for _ in range(3):
        for p, t in params.items():
            t.grad = torch.from_numpy(g[p].copy())
        opt.step()
        scheduler.step()
        history.append({p: t.detach().clone() for p, t in params.items()})
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0125)
    for p in params:
        d1, d2, d3 = (history[i][p] - history[i + 1][p] for i in range(3))
        assert torch.linalg.norm(d1) > 0
        torch.testing.assert_close(d2, 0.5 * d1, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(d3, 0.25 * d1, rtol=1e-9, atol=1e-12)


def test_lambda_lr_zero_stops_the_step(mod):
    params = params_of(weights(np.random.default_rng(7), torch.float32))
    before = {p: t.detach().clone() for p, t in params.items()}
    opt = Optimizer(params, mod, optimizer="sgd_dual", set=MLP_SET)
    torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.0)
    for t in params.values():
        t.grad = torch.randn_like(t)
    opt.step()
    for p, t in params.items():
        assert torch.equal(t, before[p]), p


# step(closure) and parameters without a gradient.

def test_step_returns_the_closures_loss(mod):
    net = model()
    opt = Optimizer(net.named_parameters(), mod, set=MLP_SET, optimizer="muon", rename=RENAME, fallback=adam)
    x, y = batch(0)
    before = net[2].weight.detach().clone()

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and loss.item() == pytest.approx(
        torch.nn.functional.cross_entropy(model()(x), y).item())
    assert not torch.equal(net[2].weight, before)
    assert opt.step() is None


def test_grad_none_steps_with_zero(mod):
    rng = np.random.default_rng(8)
    w0, g = weights(rng, torch.float32), grads_of(rng, torch.float32, 0)
    a, b = params_of(w0), params_of(w0)
    opt_a = Optimizer(a, mod, optimizer="nesterov_wd", set=MLP_SET, wd=0.5)
    opt_b = Optimizer(b, mod, optimizer="nesterov_wd", set=MLP_SET, wd=0.5)
    for step in range(2):
        for p in MLP_SHAPES:
            a[p].grad = None if p == "hidden" else torch.from_numpy(g[p].copy())
            b[p].grad = torch.zeros_like(b[p]) if p == "hidden" else torch.from_numpy(g[p].copy())
        opt_a.step()
        opt_b.step()
        for p in MLP_SHAPES:
            assert same_bits(a[p].detach().numpy(), b[p].detach().numpy()), (step, p)
    assert a["hidden"].grad is None
    assert not torch.equal(a["hidden"], torch.from_numpy(w0["hidden"]))  # weight decay ran


def test_zero_grad_reaches_the_fallback(mod):
    net = model()
    opt = Optimizer(net.named_parameters(), mod, set=MLP_SET, rename=RENAME, fallback=adam, optimizer="muon")
    train_step(net, opt, 0)
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in net.parameters())


def test_rename_function(mod):
    net = model()
    opt = Optimizer(net.named_parameters(), mod, set=MLP_SET, optimizer="muon", rename=RENAME.get,
                    fallback=lambda ps: torch.optim.SGD(ps, lr=0.1))
    assert [p for p, _ in opt.weights] == ["input", "hidden", "output"]
    assert opt.weights[1][1] is net[2].weight
    assert isinstance(opt.fallback, torch.optim.SGD) and len(opt.fallback.param_groups[0]["params"]) == 3


# Refusals, each naming what is wrong.

def test_rename_missing_a_weight(mod):
    net = model()
    typo = dict(RENAME, **{"4.weight": "outptu"})
    with pytest.raises(ValueError) as e:
        Optimizer(net.named_parameters(), mod, set=MLP_SET, optimizer="muon", rename=typo, fallback=adam)
    assert "'output'" in str(e.value) and "'4.weight'" in str(e.value) and "'outptu'" in str(e.value)
    partial = {k: v for k, v in RENAME.items() if k != "4.weight"}
    with pytest.raises(ValueError) as e:
        Optimizer(net.named_parameters(), mod, set=MLP_SET, optimizer="muon", rename=partial, fallback=adam)
    assert "'output'" in str(e.value) and "'4.weight'" in str(e.value)  # the parameter of its shape


def test_rename_twice(mod):
    net = model()
    with pytest.raises(ValueError, match="'0.weight' and '2.weight' are both renamed to weight 'input'"):
        Optimizer(net.named_parameters(), mod, optimizer="muon", set=MLP_SET, rename={"0.weight": "input", "2.weight": "input"})


def test_wrong_shape(mod):
    params = params_of(weights(np.random.default_rng(0), torch.float32))
    params["output"] = torch.nn.Parameter(torch.zeros(32, 10))
    with pytest.raises(ValueError, match=r"parameter 'output' has shape \(32, 10\), but weight 'output' .* \(10, 32\)"):
        Optimizer(params, mod, optimizer="muon", set=MLP_SET)
    net = model()
    with pytest.raises(ValueError, match=r"parameter '4.weight' has shape \(10, 32\), but weight 'hidden' .* \(32, 32\)"
                                         r".*parameter '2.weight' has shape \(32, 32\), but weight 'output' .* \(10, 32\)"):
        Optimizer(net.named_parameters(), mod, optimizer="muon", set=MLP_SET, fallback=adam,
                  rename={"0.weight": "input", "2.weight": "output", "4.weight": "hidden"})


def test_leftovers_without_fallback(mod):
    net = model()
    with pytest.raises(ValueError, match=r"does not describe: 0.bias, 2.bias, 4.bias; give fallback="):
        Optimizer(net.named_parameters(), mod, optimizer="muon", set=MLP_SET, rename=RENAME)


def test_unknown_hyperparameter(mod):
    params = params_of(weights(np.random.default_rng(0), torch.float32))
    with pytest.raises(ValueError, match=r"no hyperparameter 'lrr'; did you mean 'lr'\?"):
        Optimizer(params, mod, set=MLP_SET, optimizer="nesterov_wd", lrr=0.1)


def test_unknown_optimizer(mod):
    params = params_of(weights(np.random.default_rng(0), torch.float32))
    with pytest.raises(modc.CompileError, match="nesterov"):
        Optimizer(params, mod, set=MLP_SET, optimizer="nesterov_w")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int32])
def test_wrong_dtype(mod, dtype):
    params = {p: torch.zeros(s, dtype=dtype) for p, s in MLP_SHAPES.items()}
    with pytest.raises(TypeError, match=f"float32 or float64 parameters, not {dtype}"):
        Optimizer(params, mod, optimizer="muon", set=MLP_SET)


def test_mixed_dtypes(mod):
    params = params_of(weights(np.random.default_rng(0), torch.float32))
    params["hidden"] = torch.nn.Parameter(params["hidden"].detach().double())
    with pytest.raises(TypeError, match="share one dtype"):
        Optimizer(params, mod, optimizer="muon", set=MLP_SET)


def test_gradient_of_another_dtype(mod):
    params = params_of(weights(np.random.default_rng(0), torch.float32))
    opt = Optimizer(params, mod, optimizer="muon", set=MLP_SET)
    for p in params.values():
        p.grad = torch.zeros_like(p)
    params["hidden"].grad.data = torch.zeros(32, 32, dtype=torch.float64)  # .data sidesteps torch's own check
    with pytest.raises(TypeError, match="gradient 'hidden' is torch.float64"):
        opt.step()


def test_not_contiguous_parameter(mod):
    params = params_of(weights(np.random.default_rng(0), torch.float32))
    params["input"] = torch.nn.Parameter(torch.zeros(48, 32).t())
    with pytest.raises(ValueError, match="parameter 'input' is not contiguous"):
        Optimizer(params, mod, optimizer="muon", set=MLP_SET)


def test_not_contiguous_gradient(mod):
    params = params_of(weights(np.random.default_rng(0), torch.float32))
    opt = Optimizer(params, mod, optimizer="muon", set=MLP_SET)
    for p in params.values():
        p.grad = torch.zeros_like(p)
    params["input"].grad = torch.zeros(48, 32).t()
    with pytest.raises(ValueError, match="gradient 'input' is not contiguous"):
        opt.step()


def test_bad_mod_file(tmp_path):
    bad = tmp_path / "bad.mod"
    bad.write_text("network n = Linear(4, 4) as w\n\noptimizer o(lr = 0.1) {\n    W -= lr * dualise(grad)\n}\n")
    with pytest.raises(modc.CompileError) as e:
        Optimizer({"w": torch.nn.Parameter(torch.zeros(4, 4))}, str(bad))
    assert f"{bad}:4:15: error:" in str(e.value), str(e.value)


def test_parameters_not_on_the_cpu(mod):
    """Parameters neither on the CPU nor on a GPU (here the meta device) are refused."""
    params = {p: torch.nn.Parameter(torch.empty(s, device="meta")) for p, s in MLP_SHAPES.items()}
    with pytest.raises(ValueError, match="the parameters on meta: modc takes CPU tensors, or CUDA tensors"):
        Optimizer(params, mod, optimizer="muon", set=MLP_SET)


def test_cuda_parameters(mod):
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    """On a real GPU: CUDA parameters pick the CUDA backend, and a step equals the CPU one."""
    start = {p: 0.1 * torch.randn(s, dtype=torch.float32) for p, s in MLP_SHAPES.items()}
    grads = {p: torch.randn(s, dtype=torch.float32) for p, s in MLP_SHAPES.items()}
    gpu = {p: torch.nn.Parameter(t.cuda()) for p, t in start.items()}
    cpu = {p: torch.nn.Parameter(t.clone()) for p, t in start.items()}
    opt, ref = Optimizer(gpu, mod, optimizer="muon", set=MLP_SET), Optimizer(cpu, mod, optimizer="muon", set=MLP_SET)
    assert opt._native.backend == "cuda"
    for p in gpu:
        gpu[p].grad, cpu[p].grad = grads[p].cuda(), grads[p].clone()
    opt.step()
    ref.step()
    for p in gpu:
        change, want = gpu[p].detach().cpu() - start[p], cpu[p].detach() - start[p]
        assert float((change - want).norm() / want.norm()) < 1e-3, p


def test_one_param_group(mod):
    net = model()
    opt = Optimizer(net.named_parameters(), mod, optimizer="muon", set=MLP_SET, rename=RENAME, fallback=adam)
    with pytest.raises(ValueError, match="one parameter group"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))]})


def test_deepcopy_of_state_dict_is_independent(mod):
    params = params_of(weights(np.random.default_rng(9), torch.float32))
    opt = Optimizer(params, mod, optimizer="muon", set=MLP_SET)
    for p in params.values():
        p.grad = torch.ones_like(p)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    opt.step()
    assert not torch.equal(sd["state"][0]["m"], opt.state_dict()["state"][0]["m"])


def test_step_is_an_in_place_update_for_autograd(mod):
    """A graph that saved a weight before the step refuses to backward after it, as with torch's optimizers."""
    params = params_of(weights(np.random.default_rng(10), torch.float32))
    opt = Optimizer(params, mod, optimizer="muon", set=MLP_SET)
    loss = sum((p * p).sum() for p in params.values())
    versions = [p._version for p in params.values()]
    opt.step()
    assert all(p._version > v for p, v in zip(params.values(), versions))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
