"""PyTorch's random state and CPU threads."""

import random

import numpy as np
import pytest
import torch

from spikeinterface_deepsort.learning.torch_utils import seed_everything, torch_generator, torch_threads


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


def test_torch_threads_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(0):
        assert torch.get_num_threads() == 1  # at least one
    with torch_threads(None):
        assert torch.get_num_threads() == before  # PyTorch's own setting
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            raise RuntimeError("a failure inside the block")
    assert torch.get_num_threads() == before  # restored after an error too
