#!/usr/bin/env python3
"""Data-parallel training with modc's distributed optimizer step (docs/distributed.md).

    torchrun --nproc_per_node=2 examples/train_distributed.py            # 2 ranks, gloo on CPUs
    torchrun --nproc_per_node=8 examples/train_distributed.py            # NCCL where there are GPUs

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--replicate-data", action="store_true", help="every rank sees the whole batch (exactness check)")
    parser.add_argument("--out", help="save the final weights here (rank 0)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # with 2+ threads PyTorch's OpenMP fights OpenBLAS (and other ranks) for the cores

    import modc.torch
    distributed = "RANK" in os.environ
    if distributed:
        # gloo: the model stays on the CPU (below), and NCCL moves CUDA tensors only.
        dist.init_process_group("gloo")
    rank, size = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    # The model stays on the CPU: modc's CUDA backend runs on GPU 0 only so far, and each rank of
    # a multi-GPU run would need its own GPU (docs/distributed.md, "Limits").

    net = model(args.width)
    ddp = nn.parallel.DistributedDataParallel(net) if distributed else net
    opt = modc.torch.Optimizer(net.named_parameters(), HERE / "digits.mod", optimizer="muon", lr=args.lr,
                               set={"width": args.width}, threads=1,
                               rename=lambda name: name[:-len(".weight")] if name.endswith(".weight") else None,
                               fallback=lambda ps: torch.optim.AdamW(ps, lr=0.01),
                               process_group=dist.group.WORLD if distributed else None)
    if rank == 0 and distributed:
        owners = {path: w["owner"] for path, w in zip(opt._shards.paths, opt._shards.partition["weights"])}
        print(f"{size} ranks; owners {owners}; modelled imbalance {opt._shards.partition['imbalance']:.3f}")

    x, y = digits()
    g = torch.Generator().manual_seed(1)
    for epoch in range(args.epochs):
        order = torch.randperm(len(x), generator=g)
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
        print(f"training accuracy {accuracy:.4f}")
        if args.out:
            torch.save(net.state_dict(), args.out)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
