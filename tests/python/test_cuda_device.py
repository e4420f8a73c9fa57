"""The CUDA device path from Python without a GPU: modc.compile(..., backend="cuda").dualize and
modc.torch.Optimizer on (stand-ins for) CUDA tensors, through the fake driver of
tests/cuda_host/fake_cuda.cpp, in a process of its own (cuda_device_check.py: the driver is
opened once per process). The fake's kernels come from the unit tests' "[.fake_kernels]" case.
ctest sets MODC_UNIT_TESTS and MODC_FAKE_CUDA where modc was built with the CUDA toolkit.
"""
import os
import subprocess
import sys

import pytest

UNIT_TESTS = os.environ.get("MODC_UNIT_TESTS")
FAKE_CUDA = os.environ.get("MODC_FAKE_CUDA")

pytestmark = pytest.mark.skipif(not (UNIT_TESTS and FAKE_CUDA),
                                reason="needs MODC_UNIT_TESTS and MODC_FAKE_CUDA (a build with the CUDA toolkit)")

# A wide, a square and a tall matrix; an optimizer with state, weight decay and two dualize calls.
TEXT = """network net = (Linear(12, 40) as head) @ ReLU @ (Linear(40, 40) as hidden) @ ReLU @ (Linear(40, 8) as input)

optimizer full(lr = 0.05, beta = 0.9, wd = 0.01, mix = 0.25) {
    m = beta * m + grad
    W -= lr * wd * W
    t = grad + beta * m
    W -= lr * (dualize(t) + mix * dualize(m))
}
"""


def test_device_path_on_the_fake_driver(tmp_path):
    mod = tmp_path / "net.mod"
    mod.write_text(TEXT)
    env = dict(os.environ, MODC_FAKE_DEVICE_MOD=str(mod), MODC_FAKE_KERNELS_OUT=str(tmp_path))
    built = subprocess.run([UNIT_TESTS, "[.fake_kernels]"], env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    env = dict(os.environ, MODC_LIBCUDA=FAKE_CUDA, MODC_LIBCUBLAS=FAKE_CUDA, MODC_FAKE_KERNELS=str(tmp_path / "kernels.so"),
               MODC_CACHE_DIR=str(tmp_path / "cache"))
    check = os.path.join(os.path.dirname(__file__), "cuda_device_check.py")
    run = subprocess.run([sys.executable, check, str(mod)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "device path ok" in run.stdout
