"""Several GPUs or machines: the sorter under ``torchrun``.

    torchrun --nproc_per_node=4 -m spikeinterface_deepsort.cli.torchrun RECORDING --output DIR [--param ...]

Rank 0 runs the sorter as usual (``run_sorter``); the other ranks join it for the
DeepCluster stage only (see ``learning/distributed.py``). Stages before (detection, snippets)
and after (units, matching) run on rank 0 with SpikeInterface's own parallelism. The backend
is NCCL on GPUs and gloo on CPUs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from ..learning.distributed import barrier, is_main_process
from ..settings import resolve_device


def main(argv: list[str] | None = None) -> int:
    import spikeinterface.sorters as ss

    from ..io import load_recording
    from ..params import SORTER_PARAMS
    from ..pipeline import run_deepspikesort

    parser = argparse.ArgumentParser(prog="torchrun ... -m spikeinterface_deepsort.cli.torchrun", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording")
    parser.add_argument("--output", required=True)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    if "RANK" not in os.environ:
        parser.error("launch with torchrun (it sets RANK, WORLD_SIZE, MASTER_ADDR...), e.g. "
                     "torchrun --nproc_per_node=2 -m spikeinterface_deepsort.cli.torchrun REC --output DIR")

    params = dict(SORTER_PARAMS.parse_assignment(text) for text in args.param)
    params["device"] = str(resolve_device(params.get("device", "auto")))  # each rank its LOCAL_RANK's GPU
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
