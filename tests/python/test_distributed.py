"""The distributed optimizer step (issue 13) on one machine: gloo on localhost, spawned ranks.

Every rank runs the same model on the same (all-reduced) gradients; modc.torch.Optimizer with a
process group steps only the weights the rank owns and broadcasts them. After several steps
the weights on every rank must equal a one-process run bit for bit; the partition covers every
weight once; the sharded state_dict gathers into the one-process one; a rank that fails makes
every rank fail with a clear error instead of hanging.
"""
import multiprocessing
import os
import socket
import tempfile
import traceback

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

import modc.distributed  # noqa: E402
from modc.torch import Optimizer  # noqa: E402

SOURCE = os.path.abspath(os.environ.get("MODC_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", ".."))
MOD = os.path.join(SOURCE, "examples", "optimizers.mod")
SET = {"pixels": 48, "width": 32, "classes": 10}
RENAME = {"0.weight": "input", "2.weight": "hidden", "4.weight": "output"}
STEPS = 4
TIMEOUT = 120  # seconds for a whole run of ranks


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(48, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 10))


def gradients(net, step):
    """The same gradients on every rank, as after DDP's all-reduce; not only Gaussian."""
    g = torch.Generator().manual_seed(100 + step)
    for i, p in enumerate(net.parameters()):
        scale = 10.0 ** ((i + step) % 5 - 2)
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype) * scale / (1 + torch.arange(p.numel()) % 7).view(p.shape)


def train(process_group=None, fail_on_rank=None):
    net = model()
    opt = Optimizer(net.named_parameters(), MOD, optimizer="nesterov_wd", set=SET, rename=RENAME, threads=1,
                    fallback=lambda ps: torch.optim.SGD(ps, lr=0.1), process_group=process_group)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for step in range(STEPS):
        gradients(net, step)
        if fail_on_rank is not None and dist.get_rank() == fail_on_rank and step == 1:
            net[2].weight.grad = net[2].weight.grad.t()  # not contiguous (32 x 32): this rank's step raises
        opt.step()
        sched.step()
    return net, opt


def worker(rank, size, init, out, fail_on_rank):
    try:
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=size)
        try:
            net, opt = train(dist.group.WORLD, fail_on_rank)
            state = opt.state_dict()
            torch.save({"weights": {k: v.clone() for k, v in net.state_dict().items()}, "state": state,
                        "mine": [opt.weights[i][0] for i in opt._shards.mine]}, os.path.join(out, f"rank{rank}.pt"))
        except RuntimeError as e:
            with open(os.path.join(out, f"rank{rank}.error"), "w") as f:
                f.write(str(e))
        finally:
            dist.destroy_process_group()
    except Exception:
        with open(os.path.join(out, f"rank{rank}.crash"), "w") as f:
            f.write(traceback.format_exc())


def run_ranks(size, fail_on_rank=None):
    out = tempfile.mkdtemp(prefix="modc_dist_")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    init = f"tcp://127.0.0.1:{port}"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=worker, args=(r, size, init, out, fail_on_rank)) for r in range(size)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT)
    hung = [r for r, p in enumerate(procs) if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert not hung, f"ranks {hung} did not finish within {TIMEOUT} s"
    crashes = [open(os.path.join(out, f)).read() for f in sorted(os.listdir(out)) if f.endswith(".crash")]
    assert not crashes, "\n".join(crashes)
    return out


@pytest.fixture(scope="module")
def single():
    net, opt = train()
    return {k: v.clone() for k, v in net.state_dict().items()}, opt.state_dict()


@pytest.mark.parametrize("size", [2, 3])
def test_ranks_equal_one_process_bit_for_bit(size, single):
    weights, state = single
    out = run_ranks(size)
    owned = []
    for r in range(size):
        got = torch.load(os.path.join(out, f"rank{r}.pt"))
        for k, v in weights.items():
            assert torch.equal(got["weights"][k], v), f"rank {r} of {size}: {k} differs from the one-process run"
        # The gathered state is the one-process state, on every rank.
        for index, entry in state["state"].items():
            for name, t in entry.items():
                assert torch.equal(got["state"]["state"][index][name], t), f"rank {r}: state {name} of {index}"
        owned += got["mine"]
    # Every weight has exactly one owner.
    assert sorted(owned) == sorted(["input", "hidden", "output"])


def test_partition_covers_every_weight_once():
    for ranks in (1, 2, 3, 8):
        p = modc.distributed.partition(MOD, ranks, set=SET)
        owners = [w["owner"] for w in p["weights"]]
        assert len(owners) == 3 and all(0 <= o < ranks for o in owners)
        assert p["imbalance"] >= p["best_imbalance"] - 1e-12
    gpt = modc.distributed.partition(os.path.join(SOURCE, "examples", "gpt.mod"), 8)
    assert gpt["imbalance"] <= 1.10 < gpt["round_robin_imbalance"]


def test_a_failing_rank_fails_every_rank():
    out = run_ranks(2, fail_on_rank=1)
    for r in range(2):
        path = os.path.join(out, f"rank{r}.error")
        assert os.path.exists(path), f"rank {r} did not raise"
        message = open(path).read()
        assert "distributed optimizer step failed" in message and "rank 1" in message, message


def test_state_dict_loads_into_one_process(single):
    """The sharded state, gathered, loads into a one-process optimizer that then continues alike."""
    weights, state = single
    out = run_ranks(2)
    got = torch.load(os.path.join(out, "rank0.pt"))
    net = model()
    net.load_state_dict(got["weights"])
    opt = Optimizer(net.named_parameters(), MOD, optimizer="nesterov_wd", set=SET, rename=RENAME, threads=1,
                    fallback=lambda ps: torch.optim.SGD(ps, lr=0.1))
    opt.load_state_dict(got["state"])
    again = opt.state_dict()
    for index, entry in state["state"].items():
        for name, t in entry.items():
            assert torch.equal(again["state"][index][name], t)


def test_example_script_two_ranks_equal_one_process(tmp_path):
    """examples/train_distributed.py on 2 gloo ranks trains to the one-process weights, bit for bit.

    The ranks are started as torchrun starts them (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT):
    Debian's torchrun (torch 1.13) fails in its elastic agent under Python 3.11.
    """
    import subprocess
    import sys
    script = os.path.join(SOURCE, "examples", "train_distributed.py")
    args = [sys.executable, script, "--replicate-data", "--epochs", "2"]
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    subprocess.run(args + ["--out", str(one)], check=True, timeout=TIMEOUT, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen(args + ["--out", str(two)], env=dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2",
                                                                    MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for r in range(2)]
    outputs = [p.communicate(timeout=TIMEOUT)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)
    a, b = torch.load(one), torch.load(two)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
