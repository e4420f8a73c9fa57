"""The CUDA device path from Python without a GPU: modc.compile(..., backend="cuda-sim").dualize and
modc.torch.Optimizer on (stand-ins for) CUDA tensors on cuda:0 and cuda:1, on the cuda-sim backend
(runtime/cuda/sim: the CUDA program on two simulated GPUs whose device memory is host memory), in
a process of its own (cuda_device_check.py replaces modc's tensor-placement functions). ctest sets MODC_CUDA_SIM where
modc was built with the CUDA toolkit.
"""
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not os.environ.get("MODC_CUDA_SIM"),
                                reason="needs MODC_CUDA_SIM (a build with the CUDA toolkit)")

# A wide, a square and a tall matrix; an optimizer with state, weight decay and two dualize calls.
TEXT = """network net = (Linear(12, 40) as head) @ ReLU @ (Linear(40, 40) as hidden) @ ReLU @ (Linear(40, 8) as input)

optimizer full(lr = 0.05, beta = 0.9, wd = 0.01, mix = 0.25) {
    m = beta * m + grad
    W -= lr * wd * W
    t = grad + beta * m
    W -= lr * (dualize(t) + mix * dualize(m))
}
"""


def test_device_path_on_the_simulator(tmp_path):
    mod = tmp_path / "net.mod"
    mod.write_text(TEXT)
    env = dict(os.environ, MODC_CACHE_DIR=str(tmp_path / "cache"))
    check = os.path.join(os.path.dirname(__file__), "cuda_device_check.py")
    run = subprocess.run([sys.executable, check, str(mod)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "device path ok" in run.stdout
