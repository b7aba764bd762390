"""The run's seed, device and job_kwargs, each resolved here once and handed to the stages.

Stages never read the seed, the device or the job_kwargs from the parameters themselves:
the pipeline builds one :class:`RunSettings` and passes its fields on, so that every stage
of a run uses the same drawn seed and the same engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ParameterError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn the user's ``device`` setting into a ``torch.device``.

    "auto" picks CUDA when PyTorch sees a GPU and the CPU otherwise; under torchrun, "auto"
    and "cuda" take the GPU of the rank's ``LOCAL_RANK``. "cuda" without a GPU is refused
    here, before any work starts, rather than failing deep inside PyTorch. "cuda:N" selects
    one GPU.
    """
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ParameterError(f"device must be one of {DEVICES} (or 'cuda:N'), got {device!r}.")
    name = device.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ParameterError(
                f"device={device!r} was asked for but PyTorch sees no CUDA GPU on this machine. "
                "Use device='cpu' (or 'auto'), or install a CUDA build of PyTorch on a machine with a GPU."
            )
        if name == "cuda" and "LOCAL_RANK" in os.environ:
            name = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        return torch.device(name)
    raise ParameterError(f"Unknown device {device!r}: use one of {DEVICES} or 'cuda:N'.")


def resolve_seed(seed: int | None, saved: int | None = None) -> int:
    """The seed given; else the one an earlier part of the run saved; else one drawn at random
    (the caller logs and keeps it, so that the run can be reproduced)."""
    if seed is not None:
        return int(seed)
    if saved is not None:
        return int(saved)
    return int(np.random.SeedSequence().entropy % 2**31)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def resolve_job_kwargs(user_job_kwargs: dict, progress: bool) -> tuple[dict, dict]:
    """SpikeInterface's job_kwargs for this run, as (matching, readers).

    Matching gets the user's job_kwargs completed by SpikeInterface's global ones
    (``fix_job_kwargs``). Where neither the user's job_kwargs nor SpikeInterface's global ones
    (``set_global_job_kwargs``) choose ``n_jobs``, the run uses every core it may run on:
    SpikeInterface's own default of one job would leave the others idle, and the Sorting does
    not depend on ``n_jobs``. The stages that read the cached traces (the cache pass, noise
    levels, detection, snippets, templates) run in threads unless the user chose a
    ``pool_engine``: matched filtering's numba kernel is compiled in the process that first
    calls it, so forked workers compiled it anew on every run while threads share it, and the
    kernel, the FFT convolutions and the filters release the GIL. Matching keeps the user's
    engine: circus-omp holds the GIL, and processes run it faster than threads.
    """
    from spikeinterface.core.globals import is_set_global_job_kwargs_set
    from spikeinterface.core.job_tools import fix_job_kwargs

    given = dict(user_job_kwargs)
    if "n_jobs" not in given and not is_set_global_job_kwargs_set():
        given["n_jobs"] = available_cores()
    job_kwargs = fix_job_kwargs(given)
    job_kwargs["progress_bar"] = job_kwargs["progress_bar"] and progress
    if "pool_engine" in user_job_kwargs:
        return job_kwargs, job_kwargs
    return job_kwargs, job_kwargs | {"pool_engine": "thread", "mp_context": None}


MEMORY_CACHE_LIMIT_BYTES = 512 * 2**20


def float32_bytes(recording) -> int:
    """Size of a float32 copy of every channel of ``recording`` (what the cache holds)."""
    return sum(recording.get_num_samples(s) for s in range(recording.get_num_segments())) * recording.get_num_channels() * 4


def cache_mode(recording, mode: str) -> str:
    """'auto' keeps the preprocessed traces in (shared) memory up to a fixed size and on disk
    beyond, so memory stays bounded however long the recording is."""
    if mode == "auto":
        return "memory" if float32_bytes(recording) <= MEMORY_CACHE_LIMIT_BYTES else "folder"
    return mode


@dataclass(frozen=True)
class RunSettings:
    """What every stage of one run shares, resolved once by :func:`resolve_settings`."""

    seed: int
    device: torch.device
    job_kwargs: dict  # matching's (the user's engine)
    reader_job_kwargs: dict  # the stages that read the cached traces (threads; see resolve_job_kwargs)
    user_job_kwargs: dict  # as the user gave them: which chunk settings they chose
    torch_threads: int | None
    progress: bool
    resume: bool


def resolve_settings(params: dict, seed: int, progress: bool) -> RunSettings:
    """The settings of a run from its validated parameters and its resolved ``seed``."""
    job_kwargs, reader_job_kwargs = resolve_job_kwargs(params["job_kwargs"], progress)
    return RunSettings(seed=seed, device=resolve_device(params["device"]), job_kwargs=job_kwargs,
                       reader_job_kwargs=reader_job_kwargs, user_job_kwargs=dict(params["job_kwargs"]),
                       torch_threads=params["torch_threads"], progress=progress, resume=params["resume"])
