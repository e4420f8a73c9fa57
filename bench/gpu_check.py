#!/usr/bin/env python3
"""The check to run once on a GPU: modc's CUDA backend against its CPU backend, timed (issue 14).

    bench/gpu.sh [MODC]      (the wrapper: settings from the environment, docs/cuda.md)

For each case (an example network with --set values), on gradients of eight kinds (Gaussian;
singular values 1/i and 1/i^2; rank 3 plus noise; rank-deficient; zero; largest entry 3e38 and
1e-38), every schedule x precision is dualized on BACKEND and compared with the CPU backend's
f64 run of the same schedule, and with the exact polar factor (the CPU's f64 `--schedule svd`);
bf16 storage makes a round trip; the optimizer step runs on BACKEND (`modc step`, and
modc.torch.Optimizer where modc and torch import) against the CPU's f64 step; then `modc bench`
timings, PyTorch's bf16 Muon on the same shapes where torch imports, and a per-kernel profile
where nsys exists. Everything goes into one JSON file, whose path is printed last. Exits 1,
naming each failed check, on any mismatch.

BACKEND=cuda-sim runs the same script on the simulator (the generated CUDA program on the host):
that is how CI tests this script (tests/CMakeLists.txt, gpu_check_sim).
"""
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from muon import zeropower_via_newtonschulz5  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tolerances, all from the tests (relative Frobenius error of each weight's update):
# tests/unit/test_cuda_sim.cpp holds the simulator to the CPU's f64 run of the schedule ("apart")
# and to the exact polar factor, past the schedule's own error ("margin"); tests/unit/test_cuda.cpp
# holds tf32 and bf16 programs to f64 (kPrecisionTolerance), runs on gradients with (nearly) zero
# singular values to being bounded (1.5: their polar factor there is rounding noise), and bf16
# storage to the rounding of bf16 (kBf16 = 2^-8).
APART = {"f32": 6e-3, "f64": 1e-9, "tf32": 0.04, "bf16": 0.3, "bf16 cubic": 0.4}
MARGIN = {"f32": 2e-3, "f64": 1e-9, "tf32": 0.04, "bf16": 0.3, "bf16 cubic": 0.4}
BOUNDED = 1.5
BF16_ROUNDING = 2.0 ** -8

SPECTRA = ["gaussian", "decay1", "decay2", "lowrank", "deficient", "zero", "huge", "tiny"]
DEFICIENT = {"lowrank", "deficient"}  # no well-defined polar factor: bounded, not close
MAGNITUDE = {"huge": 3e38, "tiny": 1e-38}  # as test_cuda.cpp's scale_to, within f32's range
# Documented limits, held to being bounded (BOUNDED) rather than close: the cubic schedule in bf16
# stops before singular values far below bf16's resolution have grown (docs/cuda.md, "Precision":
# 1.2 from f64 on GPT-2's matrices with a 1/i^2 spectrum; use tf32 or f32 with it).
BOUNDED_ONLY = {("bf16", "cubic", "decay2")}


def env_list(name, default):
    return os.environ.get(name, default).split()


def env_int(name, default):
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) < 1:
        sys.exit("bench/gpu.sh: %s must be a positive whole number, not %r" % (name, value))
    return int(value)


PARTS = ["dualize", "step", "bench", "torch", "profile"]


def env_float(name, default):
    try:
        return float(os.environ.get(name, str(default)))
    except ValueError:
        sys.exit("bench/gpu.sh: %s must be a number, not %r" % (name, os.environ[name]))


def settings():
    dtype_precisions = []  # (storage, precision): f32 storage at each precision, f64 (its own GEMMs)
    for p in env_list("PRECISIONS", "f32 tf32 bf16"):
        dtype_precisions.append(("f32", p))
    if os.environ.get("F64", "1") != "0":
        dtype_precisions.append(("f64", "f32"))
    cfg = {
        "backend": os.environ.get("BACKEND", "cuda"),
        "cases": env_list("CASES", "mlp gpt:L=1"),
        "schedules": env_list("SCHEDULES", "polar-express muon you cubic"),
        "runs": dtype_precisions,
        "spectra": env_list("SPECTRA", " ".join(SPECTRA)),
        "steps": env_int("STEPS", 3),
        "bench_runs": env_int("RUNS", 20),
        "parts": env_list("PARTS", " ".join(PARTS)),
        "tolerance_scale": env_float("TOLERANCE_SCALE", 1.0),
        "corrupt": os.environ.get("GPU_CHECK_CORRUPT", "") not in ("", "0"),
        "out": os.environ.get("OUT", ""),
    }
    for key, allowed in (("spectra", SPECTRA), ("parts", PARTS)):
        unknown = [v for v in cfg[key] if v not in allowed]
        if unknown:
            sys.exit("bench/gpu.sh: unknown %s %s; choose from %s" % (key.upper(), " ".join(unknown), " ".join(allowed)))
    unknown = [p for _, p in dtype_precisions if p not in APART or p == "f64"]
    if unknown or cfg["backend"] not in ("cuda", "cuda-sim"):
        sys.exit("bench/gpu.sh: PRECISIONS are f32, tf32 and bf16, BACKEND cuda or cuda-sim")
    return cfg


# --- safetensors, read and written here so that bf16 needs no extra package ---------------------

_DT = {"F32": np.float32, "F64": np.float64, "BF16": np.uint16}


def to_bf16(a):
    """bf16 bits of float32 values, rounded to nearest even (support/bf16.hpp; finite inputs)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16(h):
    return (h.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors, dtype):
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        data = to_bf16(a) if dtype == "BF16" else np.ascontiguousarray(a, dtype=_DT[dtype])
        blob = data.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """{name: (dtype name, float64 array)}."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        data = np.frombuffer(raw, dtype=_DT[h["dtype"]], count=(b - a) // np.dtype(_DT[h["dtype"]]).itemsize,
                             offset=8 + n + a)
        if h["dtype"] == "BF16":
            data = from_bf16(data)
        out[name] = (h["dtype"], data.astype(np.float64).reshape(h["shape"]))
    return out


# --- gradients -----------------------------------------------------------------------------------

class Gradients:
    """f32-representable gradients (as float64) of every leaf, of each kind in SPECTRA, from one
    Gaussian draw: a matrix gets the spectrum as tests/unit/spectra.hpp's give_spectrum gives it
    (its singular vectors kept, its singular values set), each matrix's SVD computed once."""

    def __init__(self, leaves, seed):
        self.rng = np.random.default_rng(seed)
        self.base = {l["path"]: self.rng.standard_normal(l["shape"]) for l in leaves}
        self.svd = {}

    def of(self, spectrum):
        return {p: self.leaf(p, g, spectrum).astype(np.float32).astype(np.float64) for p, g in self.base.items()}

    def leaf(self, path, g, spectrum):
        if spectrum == "zero":
            return np.zeros_like(g)
        if spectrum in MAGNITUDE:  # as test_cuda.cpp's scale_to: by a power of two, below f32's largest
            f = 2.0 ** (np.floor(np.log2(MAGNITUDE[spectrum])) - np.floor(np.log2(np.abs(g).max())))
            if np.abs(g).max() * f >= 3.4e38:
                f /= 2
            return g * f
        m = g.reshape(g.shape[0], -1) if g.ndim >= 2 else None
        if spectrum == "gaussian" or m is None or min(m.shape) < 2:
            return g
        if path not in self.svd:
            u, _, vt = np.linalg.svd(m, full_matrices=False)
            self.svd[path] = (u, vt)
        u, vt = self.svd[path]
        i = np.arange(1, u.shape[1] + 1, dtype=np.float64)
        sv = {"decay1": 1 / i, "decay2": 1 / i ** 2, "lowrank": np.where(i <= 3, 10.0, 0.0),
              "deficient": np.where(i <= len(i) // 2, 1 / i, 0.0)}[spectrum]
        out = (u * sv) @ vt
        if spectrum == "lowrank":
            out += self.rng.normal(0, 1e-3, out.shape)
        return out.reshape(g.shape)


def relative_error(got, ref):
    """As test_cuda.cpp's relative_error: Frobenius, scaled by ref's largest entry first; for a
    zero ref, the norm of got. Non-finite: inf."""
    if not np.all(np.isfinite(got)):
        return float("inf")
    unit = np.abs(ref).max() or 1.0
    d = np.linalg.norm((got - ref) / unit)
    n = np.linalg.norm(ref / unit)
    return float(d / n if n > 0 else d)


# --- the run --------------------------------------------------------------------------------------

class Check:
    def __init__(self, cfg, modc, work):
        self.cfg, self.modc, self.work = cfg, modc, work
        self.results, self.failed, self.notes = [], [], []
        self.timings = {"cpu_reference": [], "dualize": [], "step": [], "bench": []}

    def run(self, args, what):
        """Runs modc; returns (ok, stdout, wall seconds). A failure is recorded as a failed check."""
        t0 = time.perf_counter()
        p = subprocess.run([self.modc] + args, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            self.fail(what, "modc exited %d: %s" % (p.returncode, p.stderr.strip()[-2000:]))
        return p.returncode == 0, p.stdout, wall

    def fail(self, name, why):
        self.failed.append(name)
        print("FAILED: %s: %s" % (name, why), file=sys.stderr)

    def record(self, name, errors, tolerance, **fields):
        """One check: the worst of each weight's error against its tolerance."""
        tolerance *= self.cfg["tolerance_scale"]
        worst = max(errors, key=lambda w: errors[w]) if errors else ""
        error = errors.get(worst, 0.0)
        ok = bool(errors) and all(e <= tolerance for e in errors.values())
        # JSON has no infinity: a non-finite update is error null, finite false.
        self.results.append(dict(name=name, error=error if np.isfinite(error) else None, finite=bool(np.isfinite(error)),
                                 tolerance=tolerance, worst_weight=worst, passed=ok, **fields))
        print("%-64s %10.3g %10.3g  %s%s" % (name, error, tolerance, worst, "" if ok else "  FAILED"))
        if not ok:
            self.fail(name, "%s: relative error %.3g > %.3g" % (worst, error, tolerance))

    def compare(self, got_path, ref, name, tolerance, exact=None, margin=None, storage=None, **fields):
        got = read_safetensors(got_path)
        dtypes = {dtype for dtype, _ in got.values()}
        if storage is not None and dtypes != {storage.upper()}:
            self.fail(name, "updates stored as %s, not %s" % (sorted(dtypes), storage.upper()))
        if set(got) != set(ref):
            self.fail(name, "updates for %s, expected %s" % (sorted(got), sorted(ref)))
            return
        if not all(np.all(np.isfinite(a)) for a in ref.values()):
            self.fail(name, "the CPU's f64 reference is not finite")
            return
        if self.cfg["corrupt"]:  # GPU_CHECK_CORRUPT: what a wrong GPU result must do to this script
            first = next(p for p in sorted(got) if got[p][1].ndim >= 2)
            got[first] = (got[first][0], -got[first][1])
        errors = {p: relative_error(got[p][1], ref[p]) for p in ref}
        fields["storage"] = storage
        self.record(name, errors, tolerance, **fields)
        if exact is not None:  # past the schedule's own error (test_cuda_sim.cpp)
            own = {p: relative_error(ref[p], exact[p]) for p in ref}
            past = {p: relative_error(got[p][1], exact[p]) - own[p] for p in ref}
            self.record(name + " vs exact", past, margin, schedule_error=max(own.values()), **fields)


def tol(table, precision, schedule):
    return table.get(precision + " " + schedule, table[precision])


def net_args(case):
    """'gpt:L=1,d=64' -> (gpt, examples/gpt.mod, [--set L=1 --set d=64])."""
    net, _, sets = case.partition(":")
    args = []
    for s in filter(None, sets.split(",")):
        args += ["--set", s]
    return net, os.path.join(ROOT, "examples", net + ".mod"), args


def dualize_checks(c, case, leaves):
    cfg, b = c.cfg, c.cfg["backend"]
    net, file, sets = net_args(case)
    source = Gradients(leaves, seed=1)
    for spectrum in cfg["spectra"]:
        d = os.path.join(c.work, "%s-%s" % (net, spectrum))
        os.makedirs(d, exist_ok=True)
        g = source.of(spectrum)
        for dtype in ("F64", "F32", "BF16"):
            write_safetensors(os.path.join(d, dtype.lower() + ".safetensors"), g, dtype)
        wide = {p: from_bf16(to_bf16(a)).astype(np.float64) for p, a in g.items()}  # what bf16 storage holds
        write_safetensors(os.path.join(d, "bf16wide.safetensors"), wide, "F64")

        refs = {}

        def cpu64(inp, schedule):
            """The CPU backend's f64 updates of the gradients in `inp` (computed once)."""
            if (inp, schedule) not in refs:
                out = os.path.join(d, "cpu-%s-%s.safetensors" % (inp, schedule))
                what = "dualize %s %s %s: the CPU's f64 reference" % (case, schedule, spectrum)
                ok, _, wall = c.run(["dualize", file, *sets, "--in", os.path.join(d, inp + ".safetensors"), "--out", out,
                                     "--backend", "cpu", "--schedule", schedule], what)
                c.timings["cpu_reference"].append({"name": what, "gradients": inp, "wall_seconds": wall})
                refs[inp, schedule] = {p: a for p, (_, a) in read_safetensors(out).items()} if ok else None
            return refs[inp, schedule]

        exact = None
        if spectrum not in DEFICIENT and spectrum != "zero":
            exact = cpu64("f64", "svd")
        for si, schedule in enumerate(cfg["schedules"]):
            ref = cpu64("f64", schedule)
            if ref is None:
                continue
            runs = list(cfg["runs"])
            if si == 0:  # bf16 storage, in and out, at every precision: one schedule
                runs += [("bf16", p) for s, p in cfg["runs"] if s == "f32"]
            for storage, precision in runs:
                name = "dualize %s %s %s %s/%s" % (case, schedule, spectrum, storage, precision)
                out = os.path.join(d, "out.safetensors")
                if os.path.exists(out):
                    os.remove(out)
                ok, _, wall = c.run(["dualize", file, *sets, "--in", os.path.join(d, storage + ".safetensors"),
                                     "--out", out, "--backend", b, "--schedule", schedule, "--precision", precision],
                                    name)
                c.timings["dualize"].append({"name": name, "wall_seconds": wall})
                if not ok:
                    continue
                key = "f64" if storage == "f64" else precision
                fields = dict(kind="dualize", case=case, schedule=schedule, spectrum=spectrum, storage=storage,
                              precision=precision, wall_seconds=wall)
                against = cpu64("bf16wide", schedule) if storage == "bf16" else ref  # what bf16 storage holds
                if against is None:
                    continue
                if spectrum == "zero":
                    c.compare(out, against, name, 0.0, **fields)
                elif spectrum in DEFICIENT or (key, schedule, spectrum) in BOUNDED_ONLY:
                    c.compare(out, against, name, tol(APART, key, schedule) if key == "f64" else BOUNDED, **fields)
                elif storage == "bf16":
                    c.compare(out, against, name, tol(APART, key, schedule) + BF16_ROUNDING, **fields)
                else:
                    c.compare(out, against, name, tol(APART, key, schedule), exact=exact,
                              margin=tol(MARGIN, key, schedule), **fields)
        shutil.rmtree(d)  # GPT-2's gradients, references and updates take gigabytes per spectrum


def has_optimizer(file):
    with open(file) as f:
        return any(line.startswith("optimizer ") for line in f)


def step_inputs(leaves, steps):
    """Weights before the first step, and each step's gradients (Gaussian, then 1/i, alternately)."""
    w0 = {p: 0.02 * g.astype(np.float32).astype(np.float64) for p, g in Gradients(leaves, seed=99).base.items()}
    return w0, [Gradients(leaves, seed=100 + k).of(("gaussian", "decay1")[k % 2]) for k in range(steps)]


def step_checks(c, case, w0, grads):
    """STEPS optimizer steps (the file's optimizer block, state carried, lr changed every step) on
    BACKEND against the CPU's f64 steps: f32 at f32 and at bf16 precision, and f64."""
    cfg, b = c.cfg, c.cfg["backend"]
    net, file, sets = net_args(case)
    d = os.path.join(c.work, net + "-step")
    os.makedirs(d, exist_ok=True)
    for dtype in ("F64", "F32"):
        write_safetensors(os.path.join(d, "w0-%s.safetensors" % dtype), w0, dtype)
        for k, g in enumerate(grads):
            write_safetensors(os.path.join(d, "g%d-%s.safetensors" % (k, dtype), ), g, dtype)

    def steps(backend, dtype, precision, label):
        weights, state = os.path.join(d, "w0-%s.safetensors" % dtype), None
        wall = 0.0
        for k in range(cfg["steps"]):
            out = os.path.join(d, "%s-w%d.safetensors" % (label, k))
            out_state = os.path.join(d, "%s-s%d.safetensors" % (label, k))
            args = ["step", file, *sets, "--weights", weights, "--grads", os.path.join(d, "g%d-%s.safetensors" % (k, dtype)),
                    "--out", out, "--out-state", out_state, "--hyper", "lr=%g" % (0.02 / (k + 1)), "--backend", backend]
            args += ["--state", state] if state else []
            args += ["--precision", precision] if backend != "cpu" else []
            ok, _, t = c.run(args, "step %s %s step %d" % (case, label, k + 1))
            wall += t
            if not ok:
                return None, wall
            weights, state = out, out_state
        return {p: a for p, (_, a) in read_safetensors(weights).items()}, wall

    ref, _ = steps("cpu", "F64", "", "cpu-f64")
    if ref is None:
        shutil.rmtree(d)
        return
    for dtype, precision in (("F32", "f32"), ("F32", "bf16"), ("F64", "f32")):
        key = "f64" if dtype == "F64" else precision
        label = "%s-%s" % (dtype.lower(), precision)
        name = "step %s %s/%s" % (case, dtype.lower(), precision)
        got, wall = steps(b, dtype, precision, label)
        c.timings["step"].append({"name": name, "steps": cfg["steps"], "wall_seconds": wall})
        if got is None:
            continue
        # Each weight's change over the steps, against the CPU's (test_cuda_device.cpp: relative to the change).
        errors = {p: relative_error(got[p] - w0[p], ref[p] - w0[p]) for p in ref}
        c.record(name, errors, tol(APART, key, "polar-express"), kind="step", case=case, storage=dtype.lower(),
                 precision=precision, steps=cfg["steps"], wall_seconds=wall)
    shutil.rmtree(d)


def torch_cuda():
    """torch, and the device it runs on for BACKEND (None where torch or its GPU is missing)."""
    try:
        import torch
    except ImportError:
        return None, None
    if os.environ.get("BACKEND", "cuda") == "cuda-sim":
        return torch, "cpu"  # the simulator's device memory is host memory
    return (torch, "cuda") if torch.cuda.is_available() else (torch, None)


def python_step_checks(c, case, w0, grads):
    """modc.torch.Optimizer on BACKEND (CUDA tensors on a GPU: step_device) against backend="cpu" in f64."""
    torch, device = torch_cuda()
    try:
        import modc
        import modc.torch as modc_torch
    except ImportError as e:
        c.notes.append("python step skipped: %s" % e)
        return
    if device is None:
        c.notes.append("python step skipped: torch with CUDA is not importable")
        return
    _, file, sets = net_args(case)
    values = dict(s.split("=") for s in sets[1::2])
    finals = {}
    for label, backend, dtype, dev in (("cpu-f64", "cpu", torch.float64, "cpu"),
                                       ("f32", c.cfg["backend"], torch.float32, device)):
        params = {p: torch.tensor(a, dtype=dtype, device=dev) for p, a in w0.items()}
        t0 = time.perf_counter()
        opt = modc_torch.Optimizer(params, file, set=values, backend=backend,
                                   precision="f32" if backend != "cpu" else None)
        for k, g in enumerate(grads):
            for p, t in params.items():
                t.grad = torch.tensor(g[p], dtype=dtype, device=dev)
            opt.param_groups[0]["lr"] = 0.02 / (k + 1)
            opt.step()
        finals[label] = {p: t.detach().double().cpu().numpy() for p, t in params.items()}
        wall = time.perf_counter() - t0
    name = "python step %s modc.torch.Optimizer(backend=%s) f32/f32" % (case, c.cfg["backend"])
    errors = {p: relative_error(finals["f32"][p] - w0[p], finals["cpu-f64"][p] - w0[p]) for p in w0}
    c.record(name, errors, APART["f32"], kind="python step", case=case, device=device, steps=c.cfg["steps"],
             wall_seconds=wall, modc_version=getattr(modc, "__version__", ""))


def bench_timings(c, case):
    """`modc bench --backend BACKEND --json` for every schedule x precision: steady-state GPU times."""
    cfg = c.cfg
    _, file, sets = net_args(case)
    runs = list(cfg["runs"]) + [("bf16", p) for s, p in cfg["runs"] if s == "f32" and p == "bf16"]
    for schedule in cfg["schedules"]:
        for storage, precision in runs:
            name = "bench %s %s %s/%s" % (case, schedule, storage, precision)
            ok, out, wall = c.run(["bench", file, *sets, "--backend", cfg["backend"], "--schedule", schedule,
                                   "--dtype", storage, "--precision", precision, "--runs", str(cfg["bench_runs"]),
                                   "--json"], name)
            if not ok:
                continue
            report = json.loads(out)
            c.timings["bench"].append(dict(name=name, case=case, schedule=schedule, storage=storage,
                                           precision=precision, wall_seconds=wall, report=report))
            print("%-64s GPU median %8.3f ms" % (name, report["gpu_median_seconds"] * 1e3))


def torch_baseline(c, case, leaves):
    """PyTorch's bf16 Muon iteration (bench/muon.py) on the case's matrices, batched by shape as Muon
    implementations batch them, timed like `modc bench` (median of RUNS after 3 warm-up runs);
    the ratio to modc's GPU time for the same network with the muon and polar-express schedules."""
    torch, device = torch_cuda()
    if device is None:
        c.notes.append("PyTorch baseline skipped: " + ("torch with CUDA is not importable" if torch else "no torch"))
        return None
    rng = np.random.default_rng(5)
    shapes = {}
    for leaf in leaves:
        if len(leaf["shape"]) >= 2:
            m = leaf["shape"][0]
            shapes.setdefault((m, int(np.prod(leaf["shape"][1:]))), []).append(leaf["path"])
    stacks = [torch.tensor(rng.standard_normal((len(p), m, n)), dtype=torch.float32, device=device)
              for (m, n), p in shapes.items()]

    def once():
        for g in stacks:
            zeropower_via_newtonschulz5(g)
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        once()
    times = []
    for _ in range(c.cfg["bench_runs"]):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    result = {"case": case, "device": device, "torch": torch.__version__, "median_seconds": median,
              "shapes": {"%dx%d" % k: len(v) for k, v in shapes.items()}, "modc_over_torch": {}}
    for t in c.timings["bench"]:
        if t["case"] == case and t["storage"] == "f32" and t["precision"] == "bf16":
            result["modc_over_torch"][t["schedule"]] = t["report"]["gpu_median_seconds"] / median
    print("%-64s median %8.3f ms (%s); modc bf16 / torch: %s" % (
        "torch bf16 Muon " + case, median * 1e3, device,
        ", ".join("%s %.2f" % kv for kv in result["modc_over_torch"].items()) or "-"))
    return result


def profile(c, case):
    """Per-kernel GPU times from nsys of one `modc bench` run (the first schedule, bf16 GEMMs)."""
    nsys = shutil.which("nsys")
    if nsys is None:
        c.notes.append("profile skipped: nsys is not on the PATH")
        return None
    _, file, sets = net_args(case)
    rep = os.path.join(c.work, "profile")
    p = subprocess.run([nsys, "profile", "--trace=cuda", "--force-overwrite=true", "-o", rep, c.modc, "bench", file,
                        *sets, "--backend", c.cfg["backend"], "--schedule", c.cfg["schedules"][0], "--runs", "5"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        c.notes.append("profile failed: nsys profile: " + p.stderr.strip()[-500:])
        return None
    for report in ("cuda_gpu_kern_sum", "gpukernsum"):  # the name since nsys 2023, and before
        s = subprocess.run([nsys, "stats", "--report", report, "--format", "csv", "--output", "-", rep + ".nsys-rep"],
                           capture_output=True, text=True)
        lines = s.stdout.splitlines()
        head = next((i for i, line in enumerate(lines) if line.startswith('"Time') or line.startswith("Time")), None)
        if s.returncode == 0 and head is not None:
            import csv
            rows = list(csv.DictReader(lines[head:]))
            for row in rows[:15]:
                print("  %-60.60s %6s %%  %8s calls" % (row.get("Name", "?"), row.get("Time (%)", "?"),
                                                       row.get("Instances", "?")))
            return {"case": case, "report": report, "kernels": rows}
    c.notes.append("profile failed: nsys stats gave no kernel summary")
    return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return platform.processor()


def machine(modc):
    def output(*args):
        try:
            return subprocess.run(list(args), capture_output=True, text=True, timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    torch, device = torch_cuda()
    info = {
        "host": platform.node(), "platform": platform.platform(), "cpu": cpu_model(),
        "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
        "torch": torch.__version__ if torch else None, "torch_device": device,
        "modc": output(modc, "--version"), "git": output("git", "-C", ROOT, "describe", "--always", "--dirty"),
        "nvidia_smi": output("nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                             "--format=csv,noheader"),
        "nvcc": output("nvcc", "--version").splitlines()[-1:] or None,
        "nsys": output("nsys", "--version") or None,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "MODC_CACHE_DIR": os.environ.get("MODC_CACHE_DIR"),
        "load_average": os.getloadavg(),
    }
    return info


def main():
    cfg = settings()
    modc = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "modc")
    if not os.access(modc, os.X_OK):
        sys.exit("bench/gpu.sh: no modc at %s (build it, or pass its path)" % modc)
    start = time.perf_counter()
    work = tempfile.mkdtemp(prefix="modc-gpu-check-")
    try:
        # No GPU, no driver, or a modc built without the toolkit: say so and stop.
        probe = subprocess.run([modc, "dualize", os.path.join(ROOT, "examples", "mlp.mod"), "--in",
                                os.path.join(work, "none"), "--out", os.path.join(work, "none.out"),
                                "--backend", cfg["backend"]], capture_output=True, text=True)
        if "cannot run here" in probe.stderr or "built without NVRTC" in probe.stderr:
            sys.exit(probe.stderr.strip())
        c = Check(cfg, modc, work)
        print("%-64s %10s %10s  %s" % ("check", "error", "tolerance", "worst weight"))
        baselines, profiles, cases = [], [], {}
        for case in cfg["cases"]:
            net, file, sets = net_args(case)
            ok, out, _ = c.run(["explain", file, *sets, "--json"], "explain " + case)
            if not ok:
                continue
            leaves = json.loads(out)["leaves"]
            cases[case] = [{"path": l["path"], "shape": l["shape"]} for l in leaves]
            if "dualize" in cfg["parts"]:
                dualize_checks(c, case, leaves)
            if "step" in cfg["parts"]:
                if has_optimizer(file):
                    w0, grads = step_inputs(leaves, cfg["steps"])
                    step_checks(c, case, w0, grads)
                    python_step_checks(c, case, w0, grads)
                else:
                    c.notes.append("step skipped for %s: its file has no optimizer block" % case)
            if "bench" in cfg["parts"]:
                bench_timings(c, case)
            if "torch" in cfg["parts"]:
                baselines.append(torch_baseline(c, case, leaves))
            if "profile" in cfg["parts"]:
                profiles.append(profile(c, case))
            print("%s: done after %.0f s" % (case, time.perf_counter() - start))
        seconds = time.perf_counter() - start
        report = {
            "machine": machine(modc),
            "settings": dict(cfg, runs=[list(r) for r in cfg["runs"]], modc=modc, tolerances={
                "apart": APART, "margin": MARGIN, "bounded": BOUNDED, "bf16_rounding": BF16_ROUNDING}),
            "cases": cases,
            "checks": c.results,
            "timings": c.timings,
            "torch_baseline": [b for b in baselines if b],
            "profile": [p for p in profiles if p],
            "notes": c.notes,
            "failed": c.failed,
            "passed": not c.failed,
            "seconds": seconds,
        }
        path = cfg["out"] or os.path.join(ROOT, "build", "gpu_check-%s-%s.json" % (
            cfg["backend"], time.strftime("%Y%m%d-%H%M%S")))
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for note in c.notes:
        print("note: " + note)
    print("%d checks in %.0f s; report: %s" % (len(c.results), seconds, path))
    if c.failed:
        print("bench/gpu.sh: %d check(s) FAILED on %s:\n  %s" % (len(c.failed), cfg["backend"], "\n  ".join(c.failed)),
              file=sys.stderr)
        sys.exit(1)
    print("bench/gpu.sh: every check passed on %s" % cfg["backend"])


if __name__ == "__main__":
    main()
