#!/usr/bin/env python3
"""Data-parallel training with modc's distributed optimizer step (docs/distributed.md).

    torchrun --nproc_per_node=2 examples/train_distributed.py            # 2 ranks, gloo on CPUs
    torchrun --nproc_per_node=8 examples/train_distributed.py            # 8 GPUs: one per rank, NCCL

Where CUDA has a GPU for every rank of the node (--device auto, the default), rank r of the node
(LOCAL_RANK) trains on cuda:r over NCCL, and modc steps its weights there; elsewhere, or with
--device cpu, the model stays on the CPU and the ranks talk over gloo.

The digits MLP of examples/digits.mod, wrapped in DistributedDataParallel (which all-reduces
the gradients), trained with modc.torch.Optimizer(..., process_group=...): each rank runs the
optimizer block (`muon`) only for the weights modc's partition gives it, keeps their momentum
only, and broadcasts them to the others. Biases go to the fallback (AdamW), on every rank.

--replicate-data gives every rank the whole batch instead of its share. DDP then averages equal
gradients, which is exact, so the weights after training equal a one-process run bit for bit:
what the test suite checks (tests/python/test_distributed.py) to show that the distributed step
changes nothing but who computes what. With shards of the batch the averaged gradient differs
from a one-process gradient in its last bits, as in any data-parallel training.

--out FILE saves the final weights (rank 0). Without torchrun (no RANK in the environment) it
runs as a single process.
"""
import argparse
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

HERE = Path(__file__).resolve().parent


def model(width):
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("input", nn.Linear(64, width))
    net.add_module("relu1", nn.ReLU())
    net.add_module("hidden", nn.Linear(width, width))
    net.add_module("relu2", nn.ReLU())
    net.add_module("output", nn.Linear(width, 10))
    return net


def digits():
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    return torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)


def pick_device(wanted):
    """This rank's device: cuda:LOCAL_RANK (one GPU per rank of the node), or the CPU."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    enough = torch.cuda.is_available() and torch.cuda.device_count() >= local_size
    if wanted == "cuda" and not enough:
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        sys.exit(f"--device cuda needs a GPU per rank: this node runs {local_size} rank(s) and has {gpus} GPU(s)")
    return torch.device("cuda", local_rank) if wanted != "cpu" and enough else torch.device("cpu")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--replicate-data", action="store_true", help="every rank sees the whole batch (exactness check)")
    parser.add_argument("--out", help="save the final weights here (rank 0)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="cuda: one GPU per rank (NCCL); cpu: gloo; auto: cuda where there is a GPU per rank")
    args = parser.parse_args()
    torch.set_num_threads(1)  # with 2+ threads PyTorch's OpenMP fights OpenBLAS (and other ranks) for the cores

    import modc.torch
    distributed = "RANK" in os.environ
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # this rank's GPU: NCCL's and modc's (the parameters' cuda:N)
    if distributed:
        # NCCL moves CUDA tensors only; gloo moves CPU ones.
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank, size = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)

    net = model(args.width).to(device)
    ddp = (nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
           if distributed else net)
    opt = modc.torch.Optimizer(net.named_parameters(), HERE / "digits.mod", optimizer="muon", lr=args.lr,
                               set={"width": args.width}, threads=1,
                               rename=lambda name: name[:-len(".weight")] if name.endswith(".weight") else None,
                               fallback=lambda ps: torch.optim.AdamW(ps, lr=0.01),
                               process_group=dist.group.WORLD if distributed else None)
    if rank == 0 and distributed:
        owners = {path: w["owner"] for path, w in zip(opt._shards.paths, opt._shards.partition["weights"])}
        print(f"{size} ranks; owners {owners}; modelled imbalance {opt._shards.partition['imbalance']:.3f}")

    x, y = (t.to(device) for t in digits())
    g = torch.Generator().manual_seed(1)
    for epoch in range(args.epochs):
        order = torch.randperm(len(x), generator=g).to(device)
        total = 0.0
        for start in range(0, len(x), args.batch):
            batch = order[start:start + args.batch]
            if not args.replicate_data:
                batch = batch[rank::size]  # this rank's share of the batch
            loss = nn.functional.cross_entropy(ddp(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        if rank == 0:
            print(f"epoch {epoch + 1}: mean training loss {total / (len(x) if args.replicate_data else len(x) / size):.4f}")
    with torch.no_grad():
        accuracy = (net(x).argmax(1) == y).float().mean().item()
    if rank == 0:
        print(f"training accuracy {accuracy:.4f} ({device})")
        if args.out:
            torch.save({k: v.cpu() for k, v in net.state_dict().items()}, args.out)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
