"""modc from Python: compile a .mod file into a dualizer or an optimizer step.

    import modc
    d = modc.compile("examples/mlp.mod")
    updates = d.dualize({"input": g0, "hidden": g1, "output": g2})   # NumPy arrays or torch tensors

    from modc.torch import Optimizer                                 # a torch.optim.Optimizer

Tensors cross into the C++ library by address: NumPy arrays, torch tensors (any version: only
data_ptr() is used) and anything that speaks the buffer protocol or DLPack through NumPy. With
backend="cuda", CUDA tensors stay on their GPU (any cuda:N): they are dualized there, on the
current stream.
Compiler errors arrive as modc.CompileError, whose message holds modc's located diagnostics.
"""
import json
import os

from . import _modc, _tensors
from ._modc import BackendError, CompileError
from ._tensors import Tensors

__all__ = ["compile", "Dualizer", "CompileError", "BackendError", "Weight", "read_source"]
__version__ = "0.1.0"


class Weight:
    """One weight of the network: its path, shape, atom, target t and scale (t times its map's factor)."""

    __slots__ = ("path", "shape", "atom", "target", "scale")

    def __init__(self, info):
        self.path, self.shape, self.atom = info["path"], tuple(info["shape"]), info["atom"]
        self.target, self.scale = info["target"], info["scale"]

    def __repr__(self):
        return f"Weight({self.path!r}, shape={self.shape}, atom={self.atom!r}, target={self.target:.6g}, scale={self.scale:.6g})"


def read_source(path_or_source):
    """(name, text) of a .mod file given by path, or of .mod text given as a string."""
    if isinstance(path_or_source, os.PathLike) or (
            isinstance(path_or_source, str) and "\n" not in path_or_source and path_or_source.endswith(".mod")):
        path = os.fspath(path_or_source)
        try:
            with open(path, encoding="utf-8") as f:
                return path, f.read()
        except OSError as e:
            raise CompileError(f"cannot read '{path}': {e.strerror}") from None
    if not isinstance(path_or_source, str):
        raise TypeError(f"expected a path or .mod text, got {type(path_or_source).__name__}")
    return "<string>", path_or_source


def _sets(set):
    return {str(k): str(v) for k, v in (set or {}).items()}


class Dualizer:
    """The network's duality map, compiled for one dtype and backend (see modc.compile)."""

    def __init__(self, native, name, text, network, set, compile_args, device):
        self._native, self._source = native, (name, text, network, set)
        # On a CUDA backend, one native dualizer per GPU: `device`'s, made by compile, and one
        # for each other GPU whose tensors dualize is given, compiled then with the same arguments.
        self._compile_args, self._natives = compile_args, {device: native}
        self.weights = [Weight(w) for w in native.weights]
        self._tensors = Tensors(self.weights, native.dtype, native.backend)

    network = property(lambda self: self._native.network)
    schedule = property(lambda self: self._native.schedule)
    dtype = property(lambda self: self._native.dtype)
    backend = property(lambda self: self._native.backend)
    flops = property(lambda self: self._native.flops)
    device = property(lambda self: next(iter(self._natives)), doc="the GPU compiled for (CUDA backends; 0 on the CPU)")

    def explain(self):
        """The derivation as `modc explain --json` gives it, as a dict."""
        return json.loads(_modc.explain_json(*self._source))

    def dualize(self, grads, out=None):
        """Maps {path: gradient} to {path: update}, each of the gradient's type, dtype and device.

        Every weight must be present, contiguous, of the compiled dtype. `out` ({path: tensor})
        receives the updates in place when given. On the CUDA backend, CUDA tensors are dualized
        on their GPU without host copies, enqueued on its current torch stream (tensors on a GPU
        other than the one compiled for get a dualizer of their own, compiled on first use); host
        tensors are copied through, on the GPU compiled for.
        """
        inputs = self._tensors.check(grads, "gradients")
        outputs = self._tensors.outputs(inputs, out)
        device = _tensors.placement([_tensors.device_of(t) for t, _ in inputs + outputs], self.backend,
                                    "the gradients and updates")
        if device == "cpu":
            self._native.run([a for _, a in inputs], [a for _, a in outputs])
        else:
            native = self._on(_tensors.device_index(device))
            native.run_device([a for _, a in inputs], [a for _, a in outputs], _tensors.cuda_stream(device))
        return {w.path: t for w, (t, _) in zip(self.weights, outputs)}

    def _on(self, index):
        """The native dualizer of GPU `index`, compiled now if there is none yet."""
        if index not in self._natives:
            self._natives[index] = _modc.compile(*self._compile_args, device=index)
        return self._natives[index]

    def __repr__(self):
        return f"<modc.Dualizer network={self.network!r} {len(self.weights)} weights {self.dtype} {self.backend}>"


def compile(path_or_source, *, network=None, set=None, schedule="polar-express", backend="cpu", dtype="f32", gram=True,
            threads=0, precision=None, device=None):
    """Compiles a .mod file (a path) or .mod text into a Dualizer.

    set: network parameters ({"width": 512}); schedule: polar-express, muon, you, cubic or svd;
    backend: "cpu", "cuda" or "cuda-sim" (the CUDA program on a simulated GPU, on the host); dtype:
    "f32", "f64" or "bf16"; gram: Gram Newton-Schulz for wide matrices; threads: matrices
    dualized at once on the CPU (0: one per core); precision: of the matmuls, "f32", "tf32" or
    "bf16" (None: the backend's default, bf16 tensor cores on CUDA and cuda-sim); device: the GPU
    (CUDA's index, as in cuda:N) for the CUDA backends (None: torch's current CUDA device, else 0;
    dualize on another GPU's tensors compiles for that GPU too).
    """
    name, text = read_source(path_or_source)
    if device is None:
        device = _tensors.default_device_index() if backend == "cuda" else 0
    args = (name, text, network or "", _sets(set), schedule, backend, dtype, gram, threads, precision or "")
    native = _modc.compile(*args, device=device)
    return Dualizer(native, name, text, network or "", _sets(set), args, device)
