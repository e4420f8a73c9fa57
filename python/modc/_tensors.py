"""Checks of the tensors that cross into modc, and their addresses.

NumPy arrays and torch tensors are used in place (their data pointer); anything else that
NumPy can view without a copy (the buffer protocol, __array_interface__, DLPack) is viewed as
an array. Every problem is a ValueError or TypeError that names the weight.

CUDA torch tensors cross by their device address, for the CUDA backend's device path
(run_device, step_device): every tensor of one call on one GPU (any: cuda:N runs on device N),
and the work enqueued on the current torch stream of that device. device_of, cuda_stream and
empty_like are the only places that ask torch where a tensor lives or make one (the tests
replace them to run the device path on the cuda-sim backend, with CPU tensors standing in).
"""
import numpy as np

_NUMPY = {"f32": np.float32, "f64": np.float64, "bf16": None}
_TORCH = {"f32": "torch.float32", "f64": "torch.float64", "bf16": "torch.bfloat16"}


def _is_torch(t):
    return type(t).__module__.startswith("torch") and hasattr(t, "data_ptr")


def device_of(t):
    """"cpu" for host memory (NumPy arrays, CPU tensors), else the torch device's name ("cuda:0")."""
    if not _is_torch(t) or t.device.type == "cpu":
        return "cpu"
    return str(t.device) if t.device.index is not None or t.device.type != "cuda" else "cuda:0"


def device_index(device):
    """The GPU index of a CUDA device's name ("cuda:1" -> 1)."""
    return int(device.split(":")[1])


def default_device_index():
    """The GPU a CUDA compile goes to when no tensor says: torch's current device (what
    torch.cuda.set_device chose, as each rank of a multi-GPU run does), or 0."""
    try:
        import torch
        if torch.cuda.is_available():
            return torch.cuda.current_device()
    except ImportError:
        pass
    return 0


def empty_like(t):
    """A new tensor for a result, of t's type, shape, dtype and device."""
    return t.new_empty(t.shape) if _is_torch(t) else np.empty_like(t)


def cuda_stream(device):
    """The current torch stream of a CUDA device ("cuda:1"), as the int the library takes."""
    import torch
    return torch.cuda.current_stream(torch.device(device)).cuda_stream


def placement(devices, backend, what):
    """The one device of a call's tensors ("cpu" or "cuda:N"), after checking it suits the backend."""
    devices = sorted(set(devices))
    if len(devices) > 1:
        raise ValueError(f"{what} are on several devices ({', '.join(devices)}); modc takes every tensor of a call "
                         "on one device")
    device = devices[0] if devices else "cpu"
    if device == "cpu":
        return device
    if not device.startswith("cuda"):
        raise ValueError(f"{what} on {device}: modc takes CPU tensors, or CUDA tensors with the CUDA backend")
    if backend != "cuda":  # cuda-sim included: its device pointers are host pointers
        name = "CPU" if backend == "cpu" else backend
        raise ValueError(f"{what} on {device}: this was compiled for the {name} backend; compile with "
                         "backend='cuda', or pass CPU tensors")
    return device


class Tensors:
    def __init__(self, weights, dtype, backend="cpu"):
        self.weights, self.dtype, self.backend = weights, dtype, backend

    def address(self, path, t, what, writable=False):
        """The address of tensor t of weight `path`, after checking it (and that modc may write it)."""
        w = next(w for w in self.weights if w.path == path)
        if _is_torch(t):
            device = device_of(t)
            if device != "cpu":
                placement([device], self.backend, f"{what} '{path}'")  # raises unless the CUDA backend
            if str(t.dtype) != _TORCH[self.dtype]:
                raise TypeError(f"{what} '{path}' is {t.dtype}, but this was compiled for {_TORCH[self.dtype]}")
            if tuple(t.shape) != w.shape:
                raise ValueError(f"{what} '{path}' has shape {tuple(t.shape)}, but the weight is {w.shape}")
            if not t.is_contiguous():
                raise ValueError(f"{what} '{path}' is not contiguous; pass .contiguous()")
            return t.data_ptr()
        a = t if isinstance(t, np.ndarray) else np.asarray(t)
        if _NUMPY[self.dtype] is None:
            raise TypeError(f"{what} '{path}': bf16 needs torch tensors (NumPy has no bfloat16)")
        if a.dtype != _NUMPY[self.dtype]:
            raise TypeError(f"{what} '{path}' is {a.dtype}, but this was compiled for {np.dtype(_NUMPY[self.dtype])}")
        if a.shape != w.shape:
            raise ValueError(f"{what} '{path}' has shape {a.shape}, but the weight is {w.shape}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{what} '{path}' is not C-contiguous; pass np.ascontiguousarray(...)")
        if writable and not a.flags.writeable:
            raise ValueError(f"{what} '{path}' is read-only: modc writes the results into it")
        return a.ctypes.data

    def check(self, tensors, what, writable=False):
        """[(tensor, address)] in weight order from {path: tensor}; every weight, nothing else."""
        if not hasattr(tensors, "items"):
            raise TypeError(f"{what} must map weight paths to tensors, got {type(tensors).__name__}")
        paths = [w.path for w in self.weights]
        missing = [p for p in paths if p not in tensors]
        extra = [p for p in tensors if p not in paths]
        if missing or extra:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(missing))
            if extra:
                parts.append("not weights of the network: " + ", ".join(map(str, extra)))
            raise ValueError(f"{what}: " + "; ".join(parts) + f" (the weights are {', '.join(paths)})")
        out = []
        for p in paths:
            t = tensors[p]
            if not (_is_torch(t) or isinstance(t, np.ndarray)):
                t = np.asarray(t)
                if writable and t.base is None:  # a copy (of a list, say): the results would not reach the caller's
                    raise TypeError(f"{what} '{p}' must be a NumPy array, a torch tensor or a writable buffer, "
                                    f"not {type(tensors[p]).__name__}")
            out.append((t, self.address(p, t, what, writable)))
        return out

    def outputs(self, inputs, out):
        """Tensors for the results: `out`'s (checked), or new ones like the inputs."""
        if out is not None:
            return self.check(out, "out", writable=True)
        result = []
        for w, (t, _) in zip(self.weights, inputs):
            o = empty_like(t)
            result.append((o, self.address(w.path, o, "out")))
        return result
