"""Every training step holds a sub-batch of every task; the largest task is seen once per epoch."""

import numpy as np

from spikeinterface_deepsort.evaluation.multitask.batches import MultiTaskBatches, whole_batches


def _arrays(sizes):
    return {task: (np.arange(n * 3, dtype=np.float32).reshape(n, 3), np.arange(n) % 2) for task, n in sizes.items()}


def test_every_step_has_every_task_and_the_largest_is_covered():
    batches = MultiTaskBatches(_arrays({"big": 100, "small": 10}), batch_size=16, seed=0)
    assert len(batches) == 7
    seen = []
    for batch in batches:
        assert set(batch) == {"big", "small"}
        assert batch["small"][0].shape[0] == 10
        seen += batch["big"][0][:, 0].long().div(3, rounding_mode="floor").tolist()
        x, y = batch["big"]
        assert np.array_equal((x[:, 0] / 3).long() % 2, y)  # rows and labels stay together
    assert sorted(seen[:100]) == list(range(100))


def test_seeded_and_reshuffled_between_epochs():
    def two_epochs(seed):
        batches = MultiTaskBatches(_arrays({"a": 40}), batch_size=8, seed=seed)
        return [[row for batch in batches for row in batch["a"][0][:, 0].tolist()] for _ in range(2)]

    first, again, other = two_epochs(1), two_epochs(1), two_epochs(2)
    assert first == again and first != other
    assert first[0] != first[1] and sorted(first[0]) == sorted(first[1])


def test_whole_batches():
    (batch,) = whole_batches(_arrays({"a": 5, "b": 7}))
    assert batch["a"][0].shape == (5, 3) and batch["b"][1].shape == (7,)
