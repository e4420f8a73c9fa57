"""modc.torch: a .mod file's optimizer block as a torch.optim.Optimizer.

    from modc.torch import Optimizer
    opt = Optimizer(model.named_parameters(), "mlp.mod", optimizer="muon", lr=0.02,
                    rename={"0.weight": "input", "2.weight": "hidden", "4.weight": "output"},
                    fallback=lambda ps: torch.optim.AdamW(ps, lr=3e-3))
    loss.backward(); opt.step(); opt.zero_grad()

The step is the block, compiled (docs/optimizers.md): every weight the .mod file describes is
updated in place by modc; the parameters it does not describe (biases, gains) go to `fallback`.
CUDA parameters pick the CUDA backend: the whole step runs on their GPU (cuda:N: device N, so
each rank of a multi-GPU run steps on its own), on its current torch stream, with no host
copies, and the block's state stays there.
The block's parameters live in param_groups[0] (lr, beta, ...), so learning-rate schedulers
work on them; the fallback is an optimizer of its own, so schedule its rate with a scheduler on
`opt.fallback`. state_dict() holds the block's state (momentum) and the fallback's.

With process_group (torch.distributed), each rank steps only the weights modc's partition gives
it and the owners broadcast them: the result equals the one-process step (docs/distributed.md).
"""
import torch

from . import _modc, _sets, _tensors, read_source
from ._tensors import Tensors
from .distributed import Shards

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
    optimizer: the block (when the file has several); network, set, schedule, gram, threads, precision: as
    modc.compile; fallback: a function from the left-over parameters to an optimizer for them
    (without one, leftovers are an error); **hyper: values for the block's parameters.
    """

    def __init__(self, params, mod, *, optimizer=None, network=None, set=None, schedule="polar-express",
                 backend=None, rename=None, fallback=None, gram=True, threads=0, process_group=None, precision=None,
                 **hyper):
        mapped, leftover, origin = map_parameters(params, rename)
        name, text = read_source(mod)
        dtypes = {p.dtype for p in mapped.values()}
        if len(dtypes) > 1:
            raise TypeError(f"the parameters modc updates must share one dtype, not {sorted(map(str, dtypes))}")
        dtype = _DTYPES.get(next(iter(dtypes)) if dtypes else torch.float32)
        if dtype is None:
            raise TypeError(f"modc's optimizer step runs on float32 or float64 parameters, not {next(iter(dtypes))}")
        devices = [_tensors.device_of(p) for p in mapped.values()]
        if backend is None:
            backend = "cpu" if all(d == "cpu" for d in devices) else "cuda"
        # CUDA parameters step on the GPU (step_device); CPU ones through host copies on either backend.
        self._device = _tensors.placement(devices, backend, "the parameters")
        # The GPU compiled for: the parameters' (CPU parameters on a CUDA backend: the default one).
        if self._device != "cpu":
            gpu = _tensors.device_index(self._device)
        else:
            gpu = _tensors.default_device_index() if backend == "cuda" else 0
        # With a process group, this rank compiles, keeps state for and steps only the weights it
        # owns (modc.distributed); a rank that owns none compiles one, for the block's parameters.
        self._shards = None
        owned = []
        if process_group is not None:
            self._shards = Shards(name, text, process_group, network or "", _sets(set), schedule, gram)
            owned = [self._shards.paths[i] for i in self._shards.mine] or self._shards.paths[:1]
        self._native = _modc.compile_optimizer(name, text, optimizer or "", network or "", _sets(set), schedule,
                                               backend, dtype, gram, threads, owned, precision or "", device=gpu)
        self._weights = self._shards.weights if self._shards else [w for w in self._native.weights]
        if self._shards is not None and any(not self._native.has_state(s, i) for s in self._native.state_names
                                            for i in range(len(self._native.weights))):
            # Every rank must know every weight's state to share them; its rules' states are its own.
            raise ValueError(f"optimizer '{self._native.name}' keeps different state for different weights (its rules); "
                             "with process_group, every rule must keep the same state names")
        paths = [w["path"] for w in self._weights]
        missing = [p for p in paths if p not in mapped]
        unknown = [p for p in mapped if p not in paths]
        if missing or unknown:
            raise ValueError(_mismatch(self._weights, missing, unknown, origin, mapped, leftover))
        misshapen = [f"parameter '{origin[w['path']]}' has shape {tuple(mapped[w['path']].shape)}, but weight "
                     f"'{w['path']}' of the .mod file is {tuple(w['shape'])}"
                     for w in self._weights if tuple(mapped[w["path"]].shape) != tuple(w["shape"])]
        if misshapen:
            raise ValueError("; ".join(misshapen))
        for w in self._weights:
            if not mapped[w["path"]].is_contiguous():
                named = f"'{origin[w['path']]}'" + (f" (weight '{w['path']}')" if origin[w["path"]] != w["path"] else "")
                raise ValueError(f"parameter {named} is not contiguous: modc updates it in place; make it "
                                 "contiguous before creating the optimizer")
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
        self._tensors = Tensors([_Weight(w) for w in self._weights], dtype, backend)
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
        if self._shards is None:
            self._step(range(len(self._weights)))
        else:
            # Every rank learns of a failure anywhere before the weights are exchanged, so that
            # none waits for a broadcast that will not come.
            error = None
            try:
                self._step(self._shards.mine)
            except Exception as e:  # noqa: BLE001 (re-raised on every rank by agree)
                error = e
            self._shards.agree(error, self._device)
            self._shards.broadcast(self.param_groups[0]["params"])
        for p in self.param_groups[0]["params"]:
            _bump_version(p)
        if self.fallback is not None:
            self.fallback.step()
        return loss

    def _step(self, indices):
        """The block's step for the weights `indices` (all of them, or this rank's own)."""
        group = self.param_groups[0]
        for h in self.hyper_names:
            self._native.set_hyperparameter(h, float(group[h]))
        weights, grads, keep = [], [], []
        for i in indices:
            w, p = self._weights[i], group["params"][i]
            # A parameter without a gradient steps with a zero one: the block still runs for it
            # (momentum decays, weight decay applies), as it does for every weight.
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            if g.is_sparse:
                raise ValueError(f"the gradient of '{w['path']}' is sparse; modc needs dense gradients")
            keep.append(g)
            weights.append(self._tensors.address(w["path"], p, "parameter"))
            grads.append(self._tensors.address(w["path"], g, "gradient"))
            if _tensors.device_of(g) != self._device:
                raise ValueError(f"the gradient of '{w['path']}' is on {_tensors.device_of(g)}, its parameter on "
                                 f"{self._device}")
        if weights and self._device == "cpu":
            self._native.step(weights, grads)
        elif weights:
            self._native.step_device(weights, grads, _tensors.cuda_stream(self._device))
        # (step() then marks the parameters as changed in place: modc wrote them through their
        # addresses, which autograd does not see, so a graph saved before the step must refuse
        # to backward.)

    def zero_grad(self, set_to_none=False):
        super().zero_grad(set_to_none=set_to_none)
        if self.fallback is not None:
            self.fallback.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        """The block's state per parameter (e.g. 'm'), param_groups, and the fallback's state_dict."""
        params = self.param_groups[0]["params"]
        for i, p in enumerate(params):
            entry = {}
            local = i if self._shards is None else self._shards.local(i)
            for s in self._native.state_names:
                if local is not None and not self._native.has_state(s, local):
                    continue  # another rule's state
                # read_state copies to host memory (from the GPU on the CUDA backend, after the steps so far).
                t = torch.zeros_like(p, memory_format=torch.contiguous_format, device="cpu")
                if local is not None:
                    self._native.read_state(s, local, t.data_ptr())
                entry[s] = t.to(p.device)
            self.state[p] = entry
        if self._shards is not None:  # each owner's state reaches every rank: one dict a single process loads
            for s in self._native.state_names:
                self._shards.broadcast([self.state[p][s] for p in params])
        sd = super().state_dict()
        self.state.clear()  # the state lives in modc; these were copies for the dict
        sd["modc_steps"] = self._native.steps
        if self.fallback is not None:
            sd["fallback"] = self.fallback.state_dict()
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        fallback = state_dict.pop("fallback", None)
        steps = state_dict.pop("modc_steps", None)
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
            raise ValueError(f"the state_dict's modc_steps must be a step count (an int >= 0), got {steps!r}")
        super().load_state_dict(state_dict)
        for i, (w, p) in enumerate(zip(self._weights, self.param_groups[0]["params"])):
            local = i if self._shards is None else self._shards.local(i)
            if local is None:
                continue  # another rank's weight: its owner keeps its state
            entry = self.state.get(p, {})
            for s in self._native.state_names:
                if not self._native.has_state(s, local):
                    continue  # another rule's state
                if s not in entry:
                    raise ValueError(f"the state_dict has no state '{s}' for weight '{w['path']}'")
                t = entry[s].detach().to(device="cpu", dtype=p.dtype).contiguous()  # write_state reads host memory
                self._tensors.address(w["path"], t, f"state '{s}'")  # checks the shape
                self._native.write_state(s, local, t.data_ptr())
        self.state.clear()
        if steps is not None:  # the block's `step` continues from the checkpoint's count
            self._native.steps = steps
        if self.fallback is not None and fallback is not None:
            self.fallback.load_state_dict(fallback)


def _bump_version(t):
    """Marks t as modified in place (its autograd version counter, shared by its views)."""
    if _increment_version is not None:
        _increment_version(t)
    else:
        t.view(-1)[:0].zero_()  # an in-place op on an empty view of t: no data touched


_increment_version = getattr(getattr(torch.autograd, "graph", None), "increment_version", None)


def _mismatch(weights, missing, unknown, origin, mapped, leftover):
    """The message for weights without a parameter and parameters renamed to no weight."""
    shapes = {w["path"]: tuple(w["shape"]) for w in weights}
    parts = []
    for path in missing:
        # The parameters that could be meant: renamed to no weight, or left over, of the weight's shape.
        candidates = [origin[p] for p in unknown if tuple(mapped[p].shape) == shapes[path]]
        candidates += [n for n, t in leftover if tuple(t.shape) == shapes[path]]
        hint = f" (parameters of its shape: {', '.join(repr(c) for c in candidates)})" if candidates else ""
        parts.append(f"weight '{path}' {shapes[path]} of the .mod file has no parameter{hint}")
    for p in unknown:
        parts.append(f"parameter '{origin[p]}' is renamed to '{p}', which is no weight of the network")
    return "; ".join(parts) + f" (the weights are {', '.join(shapes)})"


class _Weight:
    __slots__ = ("path", "shape")

    def __init__(self, info):
        self.path, self.shape = info["path"], tuple(info["shape"])
