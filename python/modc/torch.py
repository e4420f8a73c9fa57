"""modc.torch: a .mod file's optimizer block as a torch.optim.Optimizer.

    from modc.torch import Optimizer
    opt = Optimizer(model.named_parameters(), "mlp.mod", optimizer="muon", lr=0.02,
                    rename={"0.weight": "input", "2.weight": "hidden", "4.weight": "output"},
                    fallback=lambda ps: torch.optim.AdamW(ps, lr=3e-3))
    loss.backward(); opt.step(); opt.zero_grad()

The step is the block, compiled (docs/optimizers.md): every weight the .mod file describes is
updated in place by modc; the parameters it does not describe (biases, gains) go to `fallback`.
The block's parameters live in param_groups[0] (lr, beta, ...), so learning-rate schedulers
work; state_dict() holds the block's state (momentum) and the fallback's.
"""
import torch

from . import _modc, _sets, read_source
from ._tensors import Tensors

__all__ = ["Optimizer", "map_parameters"]

_DTYPES = {torch.float32: "f32", torch.float64: "f64"}


def map_parameters(params, rename=None):
    """({path: parameter}, [(name, parameter) left over]) from named parameters.

    params: {path: parameter}, or (name, parameter) pairs such as model.named_parameters().
    rename: a dict {name: path} or a function name -> path (None: the parameter is left over);
    without it, names are paths. Names a dict does not mention are left over.
    """
    if hasattr(params, "items"):
        pairs = list(params.items())
    else:
        pairs = list(params)
        if pairs and not (isinstance(pairs[0], tuple) and len(pairs[0]) == 2):
            raise TypeError("params must map .mod weight paths to parameters, or be (name, parameter) pairs "
                            "such as model.named_parameters()")
    mapped, leftover, origin = {}, [], {}
    for name, p in pairs:
        path = name if rename is None else rename.get(name) if isinstance(rename, dict) else rename(name)
        if path is None:
            leftover.append((name, p))
        elif path in mapped:
            raise ValueError(f"parameters '{origin[path]}' and '{name}' are both renamed to weight '{path}'")
        else:
            mapped[path], origin[path] = p, name
    return mapped, leftover, origin


class Optimizer(torch.optim.Optimizer):
    """The optimizer block of a .mod file, as a torch.optim.Optimizer (see the module's doc).

    params: {path: parameter} or named parameters (with `rename`); mod: a .mod path or text;
    optimizer: the block (when the file has several); network, set, schedule, gram, threads: as
    modc.compile; fallback: a function from the left-over parameters to an optimizer for them
    (without one, leftovers are an error); **hyper: values for the block's parameters.
    """

    def __init__(self, params, mod, *, optimizer=None, network=None, set=None, schedule="polar-express",
                 backend=None, rename=None, fallback=None, gram=True, threads=0, **hyper):
        mapped, leftover, origin = map_parameters(params, rename)
        name, text = read_source(mod)
        dtypes = {p.dtype for p in mapped.values()}
        if len(dtypes) > 1:
            raise TypeError(f"the parameters modc updates must share one dtype, not {sorted(map(str, dtypes))}")
        dtype = _DTYPES.get(next(iter(dtypes)) if dtypes else torch.float32)
        if dtype is None:
            raise TypeError(f"modc's optimizer step runs on float32 or float64 parameters, not {next(iter(dtypes))}")
        devices = {p.device.type for p in mapped.values()}
        if backend is None:
            backend = "cuda" if "cuda" in devices else "cpu"
        if backend != "cpu" or devices - {"cpu"}:
            raise ValueError("modc.torch.Optimizer runs on CPU parameters for now: the CUDA step needs the "
                             "library's device-pointer API, which is not there yet")
        self._native = _modc.compile_optimizer(name, text, optimizer or "", network or "", _sets(set), schedule,
                                               backend, dtype, gram, threads)
        self._weights = [w for w in self._native.weights]
        paths = [w["path"] for w in self._weights]
        missing = [p for p in paths if p not in mapped]
        unknown = [p for p in mapped if p not in paths]
        if missing or unknown:
            parts = []
            if missing:
                parts.append("the .mod file's weights " + ", ".join(missing) + " have no parameter")
            if unknown:
                parts.append("parameters renamed to " + ", ".join(f"'{p}' (from '{origin[p]}')" for p in unknown) +
                             " name no weight of the network")
            raise ValueError("; ".join(parts) + f" (the weights are {', '.join(paths)})")
        for w in self._weights:
            p = mapped[w["path"]]
            if tuple(p.shape) != tuple(w["shape"]):
                raise ValueError(f"parameter '{origin[w['path']]}' has shape {tuple(p.shape)}, but weight "
                                 f"'{w['path']}' of the .mod file is {tuple(w['shape'])}")
        if leftover and fallback is None:
            raise ValueError("parameters the .mod file does not describe: " + ", ".join(n for n, _ in leftover) +
                             "; give fallback=lambda params: torch.optim.AdamW(params, ...) or rename them")
        self.fallback = fallback([p for _, p in leftover]) if leftover else None
        self.hyper_names = list(self._native.hyperparameters)
        for h, v in hyper.items():
            self._native.set_hyperparameter(h, float(v))  # unknown names: ValueError with a suggestion
        defaults = {}
        for h in self.hyper_names:
            try:
                defaults[h] = self._native.hyperparameter(h)
            except ValueError:
                raise ValueError(f"the block's parameter '{h}' has no default; give it: Optimizer(..., {h}=...)") from None
        self._tensors = Tensors([_Weight(w) for w in self._weights], dtype)
        super().__init__([mapped[p] for p in paths], defaults)

    @property
    def weights(self):
        """[(path, parameter)] in the .mod file's weight order."""
        return [(w["path"], p) for w, p in zip(self._weights, self.param_groups[0]["params"])]

    def add_param_group(self, param_group):
        if getattr(self, "param_groups", None):
            raise ValueError("modc.torch.Optimizer has one parameter group: the weights of the .mod file")
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        for h in self.hyper_names:
            self._native.set_hyperparameter(h, float(group[h]))
        weights, grads, keep = [], [], []
        for w, p in zip(self._weights, group["params"]):
            # A parameter without a gradient steps with a zero one: the block still runs for it
            # (momentum decays, weight decay applies), as it does for every weight.
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            if g.is_sparse:
                raise ValueError(f"the gradient of '{w['path']}' is sparse; modc needs dense gradients")
            keep.append(g)
            weights.append(self._tensors.address(w["path"], p, "parameter"))
            grads.append(self._tensors.address(w["path"], g, "gradient"))
        self._native.step(weights, grads)
        if self.fallback is not None:
            self.fallback.step()
        return loss

    def zero_grad(self, set_to_none=False):
        super().zero_grad(set_to_none=set_to_none)
        if self.fallback is not None:
            self.fallback.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        """The block's state per parameter (e.g. 'm'), param_groups, and the fallback's state_dict."""
        for i, (w, p) in enumerate(zip(self._weights, self.param_groups[0]["params"])):
            entry = {}
            for s in self._native.state_names:
                t = torch.empty_like(p, memory_format=torch.contiguous_format)
                self._native.read_state(s, i, t.data_ptr())
                entry[s] = t
            self.state[p] = entry
        sd = super().state_dict()
        self.state.clear()  # the state lives in modc; these were copies for the dict
        sd["modc_steps"] = self._native.steps
        if self.fallback is not None:
            sd["fallback"] = self.fallback.state_dict()
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        fallback = state_dict.pop("fallback", None)
        state_dict.pop("modc_steps", None)
        super().load_state_dict(state_dict)
        for i, (w, p) in enumerate(zip(self._weights, self.param_groups[0]["params"])):
            entry = self.state.get(p, {})
            for s in self._native.state_names:
                if s not in entry:
                    raise ValueError(f"the state_dict has no state '{s}' for weight '{w['path']}'")
                t = entry[s].detach().to(device=p.device, dtype=p.dtype).contiguous()
                self._tensors.address(w["path"], t, f"state '{s}'")  # checks the shape
                self._native.write_state(s, i, t.data_ptr())
        self.state.clear()
        if self.fallback is not None and fallback is not None:
            self.fallback.load_state_dict(fallback)


class _Weight:
    __slots__ = ("path", "shape")

    def __init__(self, info):
        self.path, self.shape = info["path"], tuple(info["shape"])
