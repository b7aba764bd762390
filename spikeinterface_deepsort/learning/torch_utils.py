"""PyTorch's random state and CPU threads, as the sorter, the classification and the multi-task benchmarks set them."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch; return a NumPy generator for the caller's own draws.

    Deterministic kernels are requested so that the same seed on the same machine gives
    the same result (PyTorch's CPU kernels are deterministic; on CUDA, cuBLAS needs the
    workspace setting below).
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)


def torch_generator(seed: int) -> torch.Generator:
    """A CPU generator for samplers and data loaders, independent of the global state."""
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return generator


@contextmanager
def torch_threads(n_threads: int | None):
    """PyTorch's CPU thread count set to ``n_threads`` inside the block, restored after.

    ``None`` keeps PyTorch's own setting (one thread per physical core unless the caller set
    another): DeepCluster runs between SpikeInterface's jobs, so the cores are free then. It
    does not depend on ``n_jobs``, so changing n_jobs does not change the Sorting.
    """
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(max(int(n_threads), 1))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
