"""Several GPUs or machines: DeepCluster under ``torchrun`` with PyTorch's own distributed engine.

    torchrun --nproc_per_node=4 -m spikeinterface_deepsort.distributed RECORDING --output DIR [--param ...]

Rank 0 runs the sorter as usual (``run_sorter``); the other ranks join it for the
DeepCluster stage only. There every rank embeds an equal share of the training peaks
(the share is padded so all ranks send tensors of one size), the shares are gathered
and put back in peak order, rank 0 clusters them and broadcasts the pseudo-labels, and
the network trains with DistributedDataParallel, each rank drawing its own class-balanced
batches. Stages before (detection, snippets) and after (units, matching) run on rank 0
with SpikeInterface's own parallelism. The backend is NCCL on GPUs and gloo on CPUs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

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


def local_device(device_setting: str) -> str:
    """Under torchrun each rank takes the GPU of its local rank."""
    if torch.cuda.is_available() and device_setting in ("auto", "cuda"):
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu" if device_setting == "auto" else device_setting


def main(argv: list[str] | None = None) -> int:
    import spikeinterface.sorters as ss

    from .io import load_recording
    from .params import SORTER_PARAMS
    from .pipeline import run_deepspikesort

    parser = argparse.ArgumentParser(prog="torchrun ... -m spikeinterface_deepsort.distributed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording")
    parser.add_argument("--output", required=True)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    if "RANK" not in os.environ:
        parser.error("launch with torchrun (it sets RANK, WORLD_SIZE, MASTER_ADDR...), e.g. "
                     "torchrun --nproc_per_node=2 -m spikeinterface_deepsort.distributed REC --output DIR")

    params = dict(SORTER_PARAMS.parse_assignment(text) for text in args.param)
    params["device"] = local_device(params.get("device", "auto"))
    if params.get("seed", 0) is None:
        params["seed"] = 0  # every rank must draw the same training peaks and initial weights
    backend = "nccl" if params["device"].startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(torch.device(params["device"]))
    dist.init_process_group(backend=backend)
    try:
        output = Path(args.output)
        if is_main_process():
            recording = load_recording(args.recording)
            sorting = ss.run_sorter("deepspikesort", recording, folder=output, verbose=True, **params)
            print(f"{len(sorting.unit_ids)} units; Sorting in {output / 'sorter_output' / 'sorting'}")
        else:
            run_deepspikesort(None, output / "sorter_output", params, verbose=False)
        barrier()
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
