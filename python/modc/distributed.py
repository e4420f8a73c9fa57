"""modc.distributed: the optimizer step shared by the ranks of a torch.distributed group.

Each weight has one owner rank (modc.partition: balanced by the modelled flops of its map).
After the usual gradient all-reduce (DDP), every rank runs the optimizer block for its own
weights only and keeps their state only (ZeRO-1), then each owner broadcasts its updated
weights to the others in one flat bucket per rank (gloo on CPUs, NCCL on GPUs). The result
equals the single-process step exactly: the owner runs the very code a single process runs.

Used through modc.torch.Optimizer(..., process_group=group); see docs/distributed.md.
"""
import torch
import torch.distributed as dist

from . import _modc, _sets, read_source

__all__ = ["partition", "Shards"]


def partition(path_or_source, ranks, *, network=None, set=None, schedule="polar-express", gram=True):
    """Which rank owns each weight: a dict with 'weights' ([{path, owner, flops}]), 'rank_flops',
    'imbalance' (max / mean), 'round_robin_imbalance' and 'best_imbalance' (see `modc partition`)."""
    name, text = read_source(path_or_source)
    return _modc.partition(name, text, int(ranks), network or "", _sets(set), schedule, gram)


class Shards:
    """The ranks of a process group and the weights each owns, with the collectives of a step."""

    def __init__(self, name, text, group, network, set, schedule, gram):
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        self.partition = _modc.partition(name, text, self.size, network, set, schedule, gram)
        self.weights = [{"path": w["path"], "shape": tuple(w["shape"])} for w in self.partition["weights"]]
        self.paths = [w["path"] for w in self.weights]
        self.owner = [w["owner"] for w in self.partition["weights"]]
        self.mine = [i for i, r in enumerate(self.owner) if r == self.rank]  # in weight order

    def local(self, i):
        """The index of weight i in this rank's own optimizer, or None if another rank owns it."""
        return self.mine.index(i) if self.owner[i] == self.rank else None

    def agree(self, error, device="cpu"):
        """Every rank learns whether any rank failed; a failure anywhere raises everywhere,
        naming the ranks and their messages, instead of leaving the others waiting. device: the
        weights' ("cuda:N" under NCCL, which moves CUDA tensors only)."""
        failed = torch.tensor([0 if error is None else 1], dtype=torch.int64, device=device)
        dist.all_reduce(failed, group=self.group)
        if failed.item() == 0:
            return
        messages = [None] * self.size
        dist.all_gather_object(messages, None if error is None else f"{type(error).__name__}: {error}", group=self.group)
        failures = "; ".join(f"rank {r}: {m}" for r, m in enumerate(messages) if m is not None)
        raise RuntimeError(f"modc: the distributed optimizer step failed ({failures}); it stopped on every "
                           "rank before the weights were exchanged, so the ranks now disagree: restore them from a "
                           "checkpoint") from error

    def broadcast(self, tensors):
        """tensors[i] (one per weight, on every rank) takes its owner's value: one flat bucket per rank."""
        for r in range(self.size):
            owned = [t for t, o in zip(tensors, self.owner) if o == r]
            if not owned:
                continue
            if r == self.rank:
                bucket = torch.cat([t.detach().reshape(-1) for t in owned])
            else:
                bucket = torch.empty(sum(t.numel() for t in owned), dtype=owned[0].dtype, device=owned[0].device)
            dist.broadcast(bucket, src=r, group=self.group)
            if r != self.rank:
                offset = 0
                for t in owned:
                    t.copy_(bucket[offset:offset + t.numel()].view_as(t))
                    offset += t.numel()

    def bytes_per_step(self, tensors):
        """What a step moves: each rank receives every weight it does not own."""
        return sum(t.numel() * t.element_size() for t, o in zip(tensors, self.owner) if o != self.rank)
