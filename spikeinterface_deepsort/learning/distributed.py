"""Rank helpers for DeepCluster under ``torchrun`` (PyTorch's own distributed engine).

Under torchrun every rank embeds an equal share of the training peaks (the share is padded
so all ranks send tensors of one size), the shares are gathered and put back in peak order,
rank 0 clusters them and broadcasts the pseudo-labels, and the network trains with
DistributedDataParallel. Without torchrun every helper is the identity of one process.
The launcher is ``cli/torchrun.py``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_object(value=None):
    """Rank 0's ``value`` on every rank."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(indices: np.ndarray) -> tuple[np.ndarray, int]:
    """This rank's share of ``indices`` (rank, rank + world, ...), padded by repetition to equal length."""
    world = world_size()
    per_rank = -(-len(indices) // world)
    padded = np.resize(indices, per_rank * world) if len(indices) else indices
    return padded[rank()::world], per_rank


def gather_in_order(local: np.ndarray, n_total: int) -> np.ndarray:
    """Inverse of :func:`shard`: every rank's rows gathered and interleaved back into the original order."""
    if not is_distributed():
        return local
    tensor = torch.as_tensor(np.ascontiguousarray(local))
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor)
    stacked = torch.stack([p.cpu() for p in parts], dim=1)  # (per_rank, world, ...) interleaves rank-major shards
    return stacked.reshape(-1, *tensor.shape[1:])[:n_total].numpy()
