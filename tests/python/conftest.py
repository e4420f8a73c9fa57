"""Fixtures of the Python suite: the modc command, the examples, safetensors files, gradients.

ctest sets MODC_BINARY (the modc command), MODC_SOURCE_DIR (the repository) and PYTHONPATH (the
build tree's python/). Run by hand, the defaults are the repository around this file and the
build folder named by MODC_BUILD_DIR (default build/): its python/ is put on sys.path when modc
is not importable already.

    PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/python
"""
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

SOURCE_DIR = os.path.abspath(os.environ.get("MODC_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", ".."))
_BUILD_DIR = os.path.join(SOURCE_DIR, os.environ.get("MODC_BUILD_DIR", "build"))
MODC_BINARY = os.path.abspath(os.environ.get("MODC_BINARY") or os.path.join(_BUILD_DIR, "modc"))

if os.environ.get("MODC_TEST_STRICT") == "1":
    # scripts/test.sh's strict mode (CI's fresh system): a missing module is a missing package in
    # scripts/setup.sh, so pytest.importorskip fails instead of skipping.
    def _import_or_fail(modname, *args, **kwargs):
        try:
            return importlib.import_module(modname)
        except ImportError as error:
            pytest.fail(f"MODC_TEST_STRICT=1: cannot import {modname} ({error}); "
                        "scripts/setup.sh should install it", pytrace=False)

    pytest.importorskip = _import_or_fail

try:
    import modc  # noqa: F401
except ImportError:
    # Beside the modc command is the build tree's python/ (the package built with it).
    sys.path.insert(0, os.path.join(os.path.dirname(MODC_BINARY), "python"))

# The safetensors writer and reader and the gradient kinds of `modc step`'s reference test.
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "step"))
from step_reference import gradient, read_safetensors, write_safetensors  # noqa: E402,F401

# Gradients that are not only Gaussian (tests/step/step_reference.py makes the matrices).
KINDS = ["gaussian", "decay1", "decay2", "lowrank", "rankdeficient", "zero", "huge", "tiny"]

# The small MLP of examples/mlp.mod and examples/optimizers.mod (`set`), and its weights.
MLP_SET = {"pixels": 48, "width": 32, "classes": 10}
MLP_SHAPES = {"input": (32, 48), "hidden": (32, 32), "output": (10, 32)}


def make_gradient(rng, kind, shape, dtype):
    """A gradient of one kind, in dtype; vectors get the kind's spectrum as their entries."""
    if len(shape) == 1:
        i = np.arange(1, shape[0] + 1, dtype=np.float64)
        signs = rng.choice([-1.0, 1.0], shape[0])
        base = {"gaussian": rng.standard_normal(shape), "decay1": signs / i, "decay2": signs / i**2,
                "lowrank": np.where(i <= 3, 10.0, 0.0) * signs + 1e-3 * rng.standard_normal(shape),
                "rankdeficient": np.where(i <= shape[0] // 2, signs / i, 0.0), "zero": np.zeros(shape),
                "huge": 1e150 * signs / i, "tiny": 1e-150 * signs / i}[kind]
        g = rng.permutation(base)
    else:
        g = gradient(rng, kind, (shape[0], int(np.prod(shape[1:])))).reshape(shape)
    if dtype == np.float32 and kind in ("huge", "tiny"):
        g = g / 1e150 * (1e30 if kind == "huge" else 1e-30)  # within float32's range
    return g.astype(dtype)


def same_bits(a, b):
    """Equal bit for bit (dtype, shape and every byte; NaNs and signed zeros included)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def to_numpy(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


@pytest.fixture(scope="session")
def modc_binary():
    if not os.path.exists(MODC_BINARY):
        pytest.fail(f"no modc command at {MODC_BINARY}: build it, or set MODC_BINARY")
    return MODC_BINARY


@pytest.fixture(scope="session")
def examples_dir():
    return os.path.join(SOURCE_DIR, "examples")


@pytest.fixture
def run_modc(modc_binary):
    """Runs `modc ARGS...`; fails the test with modc's stderr when it exits non-zero."""

    def run(*args):
        result = subprocess.run([modc_binary, *map(str, args)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"modc {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}")
        return result

    return run


@pytest.fixture
def sets():
    """`--set NAME=VALUE` arguments of a dict."""
    return lambda values: [f"--set={k}={v}" for k, v in values.items()]


@pytest.fixture
def one_thread():
    """One torch thread while the test runs (as the training examples run, and deterministic
    reductions), restored afterwards. The training tests use it for every test (usefixtures)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
