"""PyTorch's random state and CPU threads."""

import random

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from spikeinterface_deepsort.learning.torch_utils import cpu_threads, seed_everything, torch_generator


def _draws(rng):
    return (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist(), rng.random(3).tolist(),
            torch.nn.Linear(4, 2).weight.detach().clone())


def test_seed_everything_makes_every_draw_repeat():
    first = _draws(seed_everything(5))
    second = _draws(seed_everything(5))
    assert first[:4] == second[:4] and torch.equal(first[4], second[4])
    other = _draws(seed_everything(6))
    assert other[2] != first[2] and other[3] != first[3]
    assert torch.are_deterministic_algorithms_enabled()
    seed_everything(2**40 + 5)  # a seed beyond NumPy's 32-bit legacy range is accepted


def test_torch_generator_is_independent_of_the_global_state():
    a = torch.randperm(20, generator=torch_generator(3))
    torch.manual_seed(123)
    torch.rand(10)
    b = torch.randperm(20, generator=torch_generator(3))
    assert torch.equal(a, b) and not torch.equal(a, torch.randperm(20, generator=torch_generator(4)))


def blas_and_openmp_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info()]


def test_cpu_threads_sets_and_restores_pytorch_and_the_thread_pools():
    torch_before, pools_before = torch.get_num_threads(), blas_and_openmp_threads()
    assert pools_before, "NumPy's BLAS should be among the pools threadpoolctl sees"
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
        assert set(blas_and_openmp_threads()) == {1}  # PCA's BLAS, k-means' OpenMP
    assert torch.get_num_threads() == torch_before and blas_and_openmp_threads() == pools_before
    with cpu_threads(0):
        assert torch.get_num_threads() == 1  # at least one
    with cpu_threads(None):
        assert torch.get_num_threads() == torch_before  # PyTorch's own setting
        assert blas_and_openmp_threads() == pools_before
    with pytest.raises(RuntimeError):
        with cpu_threads(1):
            raise RuntimeError("a failure inside the block")
    # restored after an error too
    assert torch.get_num_threads() == torch_before and blas_and_openmp_threads() == pools_before
