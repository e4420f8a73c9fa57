"""Run by test_cuda_device.py in a process of its own: the device path of modc.compile(...).dualize
and modc.torch.Optimizer on the cuda-sim backend (device memory = host memory; two devices), with
CPU torch tensors standing in for CUDA ones. modc._tensors.device_of, cuda_stream and empty_like,
the only places modc asks torch where a tensor lives or makes one, are replaced: a tensor with a
`fake_device` attribute is on that device, a result made like it is on its device too, and the
current stream of any GPU is STREAM; and placement takes cuda-sim for cuda (on its own it refuses
real CUDA tensors: the simulator's device pointers are host pointers). Which device's context
the work ran in is the simulator's count (modc._modc._sim_calls_in_context).

    python3 cuda_device_check.py NET.mod
"""
import sys

import numpy as np
import torch

import modc
import modc._tensors as tensors
import modc.torch

STREAM = 0x5EED01
streams = []
_device_of = tensors.device_of
tensors.device_of = lambda t: getattr(t, "fake_device", None) or _device_of(t)


def _stream(device):
    streams.append(device)
    return STREAM


tensors.cuda_stream = _stream
_empty_like = tensors.empty_like
tensors.empty_like = lambda t: on(t.fake_device, _empty_like(t)) if hasattr(t, "fake_device") else _empty_like(t)
_placement = tensors.placement
tensors.placement = lambda devices, backend, what: _placement(devices, "cuda" if backend == "cuda-sim" else backend, what)


def on(device, t):
    t.fake_device = device
    return t


def expect_error(kind, words, f):
    try:
        f()
    except kind as e:
        assert words in str(e), f"'{words}' not in: {e}"
        return
    raise AssertionError(f"no {kind.__name__} ({words})")


def calls():
    """The simulator's calls so far in the contexts of devices 0 and 1."""
    return modc._modc._sim_calls_in_context(0), modc._modc._sim_calls_in_context(1)


def only_on(device, f):
    """f(), checking that the simulator's work for it ran in `device`'s context (0 or 1) only."""
    before = calls()
    result = f()
    after = calls()
    assert after[device] > before[device] and after[1 - device] == before[1 - device], (device, before, after)
    return result


def decay1(rng, shape):
    """A Gaussian matrix given the singular values 1/i."""
    u, _, vt = np.linalg.svd(rng.standard_normal(shape), full_matrices=False)
    return (u * (1.0 / np.arange(1, len(vt) + 1))) @ vt


def main(mod):
    rng = np.random.default_rng(3)
    gpu = modc.compile(mod, backend="cuda-sim", precision="f32")  # f32 GEMMs: compared with the CPU's f32
    assert gpu.backend == "cuda-sim"
    # dualize: "CUDA" tensors through run_device, NumPy arrays through the host run: the same bits.
    grads = {w.path: decay1(rng, w.shape).astype(np.float32) for w in gpu.weights}
    host = gpu.dualize(grads)
    # (`out` given: the updates dualize would make with new_empty would not carry the stand-in's tag.)
    device = gpu.dualize({p: on("cuda:0", torch.from_numpy(g.copy())) for p, g in grads.items()},
                         out={p: on("cuda:0", torch.full(g.shape, float("nan"))) for p, g in grads.items()})
    assert streams == ["cuda:0"], streams
    for p, g in grads.items():
        assert np.array_equal(device[p].numpy(), host[p]), p
        assert np.abs(host[p]).max() > 0
    # Without `out`: the results are made like the gradients, on their device.
    del streams[:]
    made = only_on(0, lambda: gpu.dualize({p: on("cuda:0", torch.from_numpy(g.copy())) for p, g in grads.items()}))
    assert streams == ["cuda:0"], streams
    for p in grads:
        assert made[p].fake_device == "cuda:0" and np.array_equal(made[p].numpy(), host[p]), p
    # Tensors on cuda:1: dualized in device 1's context (a dualizer compiled for it on first use),
    # on cuda:1's stream; the same bits.
    del streams[:]
    for _ in range(2):
        on1 = only_on(1, lambda: gpu.dualize({p: on("cuda:1", torch.from_numpy(g.copy())) for p, g in grads.items()}))
        for p in grads:
            assert on1[p].fake_device == "cuda:1" and np.array_equal(on1[p].numpy(), host[p]), p
    assert streams == ["cuda:1"] * 2, streams
    assert gpu.device == 0
    compiled1 = modc.compile(mod, backend="cuda-sim", precision="f32", device=1)
    assert compiled1.device == 1
    assert np.array_equal(only_on(1, lambda: compiled1.dualize(grads))[gpu.weights[0].path], host[gpu.weights[0].path])
    expect_error(modc.BackendError, "there is no CUDA device 2: 2 devices were found",
                 lambda: gpu.dualize({p: on("cuda:2", torch.from_numpy(g)) for p, g in grads.items()}))
    expect_error(modc.CompileError, "the cpu backend takes device 0 only", lambda: modc.compile(mod, device=1))
    # Tensors on several devices, another GPU, or a CUDA tensor for the CPU backend: clear errors.
    mixed = {p: on("cuda:0", torch.from_numpy(g)) for p, g in grads.items()}
    mixed[gpu.weights[0].path] = torch.from_numpy(grads[gpu.weights[0].path])
    expect_error(ValueError, "on several devices (cpu, cuda:0)", lambda: gpu.dualize(mixed))
    expect_error(ValueError, "on several devices (cpu, cuda:0)",
                 lambda: gpu.dualize({p: on("cuda:0", torch.from_numpy(g)) for p, g in grads.items()},
                                     out={p: torch.from_numpy(g.copy()) for p, g in grads.items()}))
    expect_error(ValueError, "on several devices (cuda:0, cuda:1)",
                 lambda: gpu.dualize({p: on(f"cuda:{i % 2}", torch.from_numpy(g)) for i, (p, g) in enumerate(grads.items())}))
    cpu = modc.compile(mod)
    expect_error(ValueError, "compiled for the CPU backend",
                 lambda: cpu.dualize({p: on("cuda:0", torch.from_numpy(g)) for p, g in grads.items()}))

    # modc.torch.Optimizer: "CUDA" parameters pick the CUDA backend and step through step_device;
    # the same steps on CPU parameters (the CPU backend) are the reference.
    start = {w.path: (0.2 * rng.standard_normal(w.shape)).astype(np.float32) for w in gpu.weights}
    params = {p: on("cuda:0", torch.nn.Parameter(torch.from_numpy(v.copy()))) for p, v in start.items()}
    ref = {p: torch.nn.Parameter(torch.from_numpy(v.copy())) for p, v in start.items()}
    opt = modc.torch.Optimizer(params, mod, lr=0.05, backend="cuda-sim", precision="f32")
    ref_opt = modc.torch.Optimizer(ref, mod, lr=0.05)
    assert opt._native.backend == "cuda-sim" and ref_opt._native.backend == "cpu"
    del streams[:]
    for step in range(3):
        for o in (opt, ref_opt):
            o.param_groups[0]["lr"] = 0.05 * (1 - 0.2 * step)
        before = {p: t.detach().clone() for p, t in params.items()}
        before_ref = {p: t.detach().clone() for p, t in ref.items()}
        for p in params:
            g = (decay1(rng, start[p].shape) if step % 2 else rng.standard_normal(start[p].shape)).astype(np.float32)
            params[p].grad = on("cuda:0", torch.from_numpy(g.copy()))
            ref[p].grad = torch.from_numpy(g)
        opt.step()
        ref_opt.step()
        for p in params:
            change, want = (params[p] - before[p]).detach().numpy(), (ref[p] - before_ref[p]).detach().numpy()
            err = np.linalg.norm(change - want) / np.linalg.norm(want)
            assert err < 1e-4, (step, p, err)
    assert streams == ["cuda:0"] * 3, streams
    # The state: read from the GPU into the state_dict, like the CPU backend's; loaded back.
    sd, ref_sd = opt.state_dict(), ref_opt.state_dict()
    for i in sd["state"]:
        m, want = sd["state"][i]["m"].numpy(), ref_sd["state"][i]["m"].numpy()
        assert np.linalg.norm(m - want) <= 1e-5 * np.linalg.norm(want), i
        sd["state"][i]["m"] = torch.zeros_like(sd["state"][i]["m"])
    opt.load_state_dict(sd)
    assert all(float(t["m"].abs().max()) == 0 for t in opt.state_dict()["state"].values())
    # A gradient elsewhere than its parameter, and parameters on another GPU: clear errors.
    params[gpu.weights[0].path].grad = torch.zeros(gpu.weights[0].shape)
    expect_error(ValueError, "is on cpu, its parameter on cuda:0", opt.step)
    # Parameters on cuda:1: the optimizer is compiled for device 1 and steps there only, on
    # cuda:1's stream, as the one on cuda:0 did (the same bits: one program, one simulator).
    params0 = {p: on("cuda:0", torch.nn.Parameter(torch.from_numpy(v.copy()))) for p, v in start.items()}
    params1 = {p: on("cuda:1", torch.nn.Parameter(torch.from_numpy(v.copy()))) for p, v in start.items()}
    opt0 = modc.torch.Optimizer(params0, mod, lr=0.05, backend="cuda-sim", precision="f32")
    opt1 = only_on(1, lambda: modc.torch.Optimizer(params1, mod, lr=0.05, backend="cuda-sim", precision="f32"))
    del streams[:]
    for step in range(2):
        for p in start:
            g = (decay1(rng, start[p].shape) if step else rng.standard_normal(start[p].shape)).astype(np.float32)
            params0[p].grad = on("cuda:0", torch.from_numpy(g.copy()))
            params1[p].grad = on("cuda:1", torch.from_numpy(g.copy()))
        only_on(0, opt0.step)
        only_on(1, opt1.step)
    assert streams == ["cuda:0", "cuda:1"] * 2, streams
    for p in start:
        assert np.array_equal(params1[p].detach().numpy(), params0[p].detach().numpy()), p
        assert not np.array_equal(params1[p].detach().numpy(), start[p]), p
    params1[gpu.weights[0].path].grad = on("cuda:0", torch.zeros(gpu.weights[0].shape))
    expect_error(ValueError, "is on cuda:0, its parameter on cuda:1", opt1.step)
    mixed_params = {p: on(f"cuda:{i % 2}", torch.nn.Parameter(torch.from_numpy(v.copy())))
                    for i, (p, v) in enumerate(start.items())}
    expect_error(ValueError, "on several devices (cuda:0, cuda:1)",
                 lambda: modc.torch.Optimizer(mixed_params, mod, backend="cuda-sim"))
    expect_error(ValueError, "compiled for the CPU backend", lambda: modc.torch.Optimizer(params, mod, backend="cpu"))
    print("device path ok")


if __name__ == "__main__":
    main(sys.argv[1])
