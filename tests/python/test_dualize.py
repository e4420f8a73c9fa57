"""modc.compile(...).dualize against `modc dualize`: bit for bit, from NumPy arrays and torch tensors.

Both run the same compiled code on the same inputs, so the updates must agree to the last bit,
whatever the gradient: Gaussian, spectra decaying as i^-1 and i^-2, low rank plus noise, exactly
rank-deficient, zero, huge and tiny (conftest.KINDS). The networks are small (`set`).
"""
import os

import numpy as np
import pytest

import modc
from conftest import KINDS, MLP_SET, make_gradient, read_safetensors, same_bits, to_numpy, write_safetensors

# A network of the closed-form maps (Embed: columns normalised, Bias and Gain: vectors), a
# Conv2D and a Linear.
CLOSED = """\
network closed(d = 16, hidden = 24, vocab = 40) =
    (Gain(d) as gain)
  @ (Bias(d) as bias)
  @ (Linear(d, hidden) as proj)
  @ (Conv2D(hidden, hidden, 3) as conv)
  @ (Embed(hidden, vocab) as embed)
"""
CLOSED_SET = {"d": 12, "hidden": 20, "vocab": 30}
DTYPES = {"f32": np.float32, "f64": np.float64}


@pytest.fixture(scope="module")
def networks(examples_dir, tmp_path_factory):
    closed = tmp_path_factory.mktemp("mod") / "closed.mod"
    closed.write_text(CLOSED)
    return {"mlp": (os.path.join(examples_dir, "mlp.mod"), MLP_SET), "closed": (str(closed), CLOSED_SET)}


_compiled = {}


def compiled(path, set, dtype):
    """One Dualizer per (file, dtype), shared by the tests (compiling is the slow part)."""
    key = (path, dtype)
    if key not in _compiled:
        _compiled[key] = modc.compile(path, set=set, dtype=dtype)
    return _compiled[key]


def gradients(d, kinds, dtype, seed):
    rng = np.random.default_rng(seed)
    return {w.path: make_gradient(rng, kinds[i % len(kinds)], w.shape, DTYPES[dtype]) for i, w in enumerate(d.weights)}


def cli_dualize(run_modc, sets, path, set, grads, work):
    g, u = os.path.join(work, "g.safetensors"), os.path.join(work, "u.safetensors")
    write_safetensors(g, grads)
    run_modc("dualize", path, *sets(set), "--in", g, "--out", u)
    return read_safetensors(u)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("network", ["mlp", "closed"])
@pytest.mark.parametrize("kinds", [[k] for k in KINDS] + [KINDS], ids=KINDS + ["mixed"])
def test_same_as_cli(networks, run_modc, sets, tmp_path, network, dtype, kinds):
    torch = pytest.importorskip("torch")
    path, set = networks[network]
    d = compiled(path, set, dtype)
    grads = gradients(d, kinds, dtype, seed=len(kinds) * 7 + KINDS.index(kinds[0]))
    want = cli_dualize(run_modc, sets, path, set, grads, str(tmp_path))
    assert sorted(want) == sorted(w.path for w in d.weights)

    from_numpy = d.dualize(grads)
    from_torch = d.dualize({p: torch.from_numpy(g.copy()) for p, g in grads.items()})
    for w in d.weights:
        assert same_bits(from_numpy[w.path], want[w.path]), (w.path, "numpy")
        assert same_bits(to_numpy(from_torch[w.path]), want[w.path]), (w.path, "torch")
        assert np.all(np.isfinite(want[w.path])), (w.path, "not finite")


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_results_keep_type_dtype_shape(networks, dtype):
    torch = pytest.importorskip("torch")
    path, set = networks["closed"]
    d = compiled(path, set, dtype)
    grads = gradients(d, ["gaussian"], dtype, seed=1)
    for p, u in d.dualize(grads).items():
        assert type(u) is np.ndarray and u.dtype == DTYPES[dtype] and u.shape == grads[p].shape
        assert u.flags.c_contiguous and u.flags.writeable
    tgrads = {p: torch.from_numpy(g) for p, g in grads.items()}
    for p, u in d.dualize(tgrads).items():
        assert isinstance(u, torch.Tensor) and u.dtype == tgrads[p].dtype and u.shape == tgrads[p].shape
        assert u.device.type == "cpu" and not u.requires_grad


def test_out_in_place(networks):
    torch = pytest.importorskip("torch")
    path, set = networks["mlp"]
    d = compiled(path, set, "f32")
    grads = gradients(d, KINDS, "f32", seed=2)
    want = d.dualize(grads)

    out = {p: np.full_like(g, np.nan) for p, g in grads.items()}
    got = d.dualize(grads, out=out)
    for p in grads:
        assert got[p] is out[p] and same_bits(out[p], want[p])

    tout = {p: torch.full(g.shape, float("nan")) for p, g in grads.items()}
    got = d.dualize({p: torch.from_numpy(g) for p, g in grads.items()}, out=tout)
    for p in grads:
        assert got[p] is tout[p] and same_bits(tout[p].numpy(), want[p])


def test_out_may_be_the_gradients(networks):
    """out= the gradients themselves: the updates overwrite them, as if out were separate."""
    path, set = networks["closed"]
    d = compiled(path, set, "f64")
    grads = gradients(d, KINDS, "f64", seed=3)
    want = d.dualize(grads)
    d.dualize(grads, out=grads)
    for p in grads:
        assert same_bits(grads[p], want[p]), p


def test_metadata(networks):
    path, set = networks["mlp"]
    d = compiled(path, set, "f32")
    assert [w.path for w in d.weights] == ["input", "hidden", "output"]
    assert [w.shape for w in d.weights] == [(32, 48), (32, 32), (10, 32)]
    assert all(w.atom == "Linear" and abs(w.target - 1 / 3) < 1e-12 for w in d.weights)
    assert d.dtype == "f32" and d.backend == "cpu" and d.network == "mlp"
    explained = d.explain()
    assert explained["network"] == "mlp" and [leaf["path"] for leaf in explained["leaves"]] == ["input", "hidden", "output"]
    assert [leaf["scale_value"] for leaf in explained["leaves"]] == [w.scale for w in d.weights]
    assert "mlp" in repr(d)


def test_text_source(examples_dir):
    with open(os.path.join(examples_dir, "mlp.mod")) as f:
        d = modc.compile(f.read(), set=MLP_SET)
    assert [w.shape for w in d.weights] == [(32, 48), (32, 32), (10, 32)]


# Bad input: each a clear error that names the weight.

@pytest.fixture(scope="module")
def mlp32(networks):
    path, set = networks["mlp"]
    return compiled(path, set, "f32")


def good(d):
    return gradients(d, ["gaussian"], d.dtype, seed=4)


def test_missing_and_extra_weights(mlp32):
    grads = good(mlp32)
    del grads["hidden"]
    grads["hiden"] = np.zeros((32, 32), np.float32)
    with pytest.raises(ValueError, match=r"missing hidden.*not weights of the network: hiden"):
        mlp32.dualize(grads)


def test_wrong_shape(mlp32):
    grads = dict(good(mlp32), output=np.zeros((32, 10), np.float32))
    with pytest.raises(ValueError, match=r"'output' has shape \(32, 10\), but the weight is \(10, 32\)"):
        mlp32.dualize(grads)


@pytest.mark.parametrize("dtype", ["float16", "float64", "int32"])
def test_wrong_dtype_numpy(mlp32, dtype):
    grads = dict(good(mlp32), hidden=np.zeros((32, 32), dtype))
    with pytest.raises(TypeError, match=f"'hidden' is {dtype}, but this was compiled for float32"):
        mlp32.dualize(grads)


@pytest.mark.parametrize("dtype", ["float16", "float64", "int64"])
def test_wrong_dtype_torch(mlp32, dtype):
    torch = pytest.importorskip("torch")
    grads = {p: torch.from_numpy(g) for p, g in good(mlp32).items()}
    grads["hidden"] = torch.zeros((32, 32), dtype=getattr(torch, dtype))
    with pytest.raises(TypeError, match=f"'hidden' is torch.{dtype}, but this was compiled for torch.float32"):
        mlp32.dualize(grads)


def test_not_contiguous(mlp32):
    torch = pytest.importorskip("torch")
    grads = dict(good(mlp32), hidden=np.zeros((32, 64), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="'hidden' is not C-contiguous"):
        mlp32.dualize(grads)
    tgrads = {p: torch.from_numpy(g) for p, g in good(mlp32).items()}
    tgrads["input"] = torch.zeros(48, 32).t()
    with pytest.raises(ValueError, match="'input' is not contiguous"):
        mlp32.dualize(tgrads)


def test_read_only_out(mlp32):
    grads = good(mlp32)
    out = {p: np.empty_like(g) for p, g in grads.items()}
    out["hidden"].flags.writeable = False
    with pytest.raises(ValueError, match="out 'hidden' is read-only"):
        mlp32.dualize(grads, out=out)


def test_not_a_mapping(mlp32):
    with pytest.raises(TypeError, match="must map weight paths to tensors"):
        mlp32.dualize(list(good(mlp32).values()))


def test_tensor_not_on_the_cpu(mlp32):
    """A tensor neither on the CPU nor on a GPU (here the meta device) is refused."""
    torch = pytest.importorskip("torch")
    grads = {p: torch.from_numpy(g) for p, g in good(mlp32).items()}
    grads["output"] = torch.empty((10, 32), device="meta")
    with pytest.raises(ValueError, match="'output' on meta: modc takes CPU tensors, or CUDA tensors"):
        mlp32.dualize(grads)


def test_cuda_tensor(mlp32):
    """A CUDA tensor for the CPU backend is refused (the device path: test_cuda_device.py)."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    grads = {p: torch.from_numpy(g).cuda() for p, g in good(mlp32).items()}
    with pytest.raises(ValueError, match="on cuda:0: this was compiled for the CPU backend"):
        mlp32.dualize(grads)


def test_bad_mod_file(tmp_path):
    bad = tmp_path / "bad.mod"
    bad.write_text("network n = Linear(4, 4) @ Lienar(4, 4)\n")
    with pytest.raises(modc.CompileError) as e:
        modc.compile(str(bad))
    assert f"{bad}:1:28: error:" in str(e.value)
    assert "Linear" in str(e.value)  # the suggestion
    with pytest.raises(modc.CompileError, match=r"<string>:1:28: error:"):
        modc.compile("network n = Linear(4, 4) @ Lienar(4, 4)\n")
    with pytest.raises(modc.CompileError, match="cannot read"):
        modc.compile(str(tmp_path / "absent.mod"))


def test_bad_options(examples_dir):
    mlp = os.path.join(examples_dir, "mlp.mod")
    with pytest.raises(modc.CompileError, match="dtype must be"):
        modc.compile(mlp, dtype="f16")
    with pytest.raises(modc.CompileError, match="backend must be"):
        modc.compile(mlp, backend="tpu")


def test_out_that_would_be_copied(mlp32):
    grads = good(mlp32)
    out = {p: np.empty_like(g) for p, g in grads.items()}
    out["output"] = np.zeros((10, 32), np.float32).tolist()
    with pytest.raises(TypeError, match="out 'output' must be a NumPy array, a torch tensor or a writable buffer, not list"):
        mlp32.dualize(grads, out=out)
