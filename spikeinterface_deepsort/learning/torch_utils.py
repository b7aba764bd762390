"""PyTorch's random state and CPU threads, as the sorter, the classification and the multi-task benchmarks set them."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager

import numpy as np
import torch
from threadpoolctl import threadpool_limits


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
def cpu_threads(n_threads: int | None):
    """PyTorch's CPU threads and this process's BLAS and OpenMP pools set to ``n_threads`` inside
    the block, restored after.

    The pools matter as much as PyTorch's: the PCA, k-means and HDBSCAN of DeepCluster and
    unit formation run on few thousand points, where a second thread gains nothing alone but
    waits at every barrier for a core when other programs share them (reference case beside
    two busy processes: DeepCluster 1.76x its time alone with the pools at 2 threads, 1.57x at
    one). The pools' thread count can also change the last bits of their sums, and so the
    Sorting (one dev draw of 20 runs changed when it was fixed at one). ``None`` keeps PyTorch's and the pools' own settings (one
    thread per core unless the caller set another). The count does not depend on ``n_jobs``,
    so changing n_jobs does not change the Sorting.
    """
    if n_threads is None:
        yield
        return
    n_threads = max(int(n_threads), 1)
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            yield
    finally:
        torch.set_num_threads(previous)
