"""Device selection and seeding shared by the sorter, phase 1 and the multi-task benchmarks."""

from __future__ import annotations

import logging
import os
import random
from contextlib import contextmanager

import numpy as np
import torch

from .errors import ParameterError

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn the user's ``device`` setting into a ``torch.device``.

    "auto" picks CUDA when PyTorch sees a GPU and the CPU otherwise; "cuda" without a GPU
    is refused here, before any work starts, rather than failing deep inside PyTorch.
    "cuda:N" selects one GPU (this is what each torchrun rank uses).
    """
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ParameterError(f"device must be one of {DEVICES} (or 'cuda:N'), got {device!r}.")
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ParameterError(
                f"device={device!r} was asked for but PyTorch sees no CUDA GPU on this machine. "
                "Use device='cpu' (or 'auto'), or install a CUDA build of PyTorch on a machine with a GPU."
            )
        return torch.device(name)
    raise ParameterError(f"Unknown device {device!r}: use one of {DEVICES} or 'cuda:N'.")


def seed_everything(seed: int | None) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch; return a NumPy generator for the caller's own draws.

    Deterministic kernels are requested so that the same seed on the same machine gives
    the same result (PyTorch's CPU kernels are deterministic; on CUDA, cuBLAS needs the
    workspace setting below).
    """
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))
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
    another): DeepCluster runs between SpikeInterface's jobs, so the cores are free then, and
    on 2 idle cores two threads train 1.4x faster than one (the 32-channel case). It does not
    depend on ``n_jobs``, so changing n_jobs does not change the Sorting. When other processes
    share the cores, extra threads spin-wait and a step becomes 10-40x slower (measured here):
    that is what ``torch_threads=1`` is for.
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
