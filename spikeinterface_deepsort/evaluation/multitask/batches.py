"""Batches holding one sub-batch per task.

A training epoch lasts as many steps as the largest task needs to be seen once; the
smaller tasks are cycled (reshuffled each time through), so every optimiser step has a
sub-batch from every task and each task contributes to every step. A single-task model
is the one-task case, where this is an ordinary shuffled loader.
"""

from __future__ import annotations

import math

import numpy as np
import torch

TaskArrays = dict[str, tuple[np.ndarray, np.ndarray]]  # task -> (waveforms, labels)


def _as_tensors(arrays: TaskArrays) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {
        task: (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)) for task, (x, y) in arrays.items()
    }


class MultiTaskBatches:
    """Iterable of ``{task: (waveforms, labels)}`` training batches, seeded."""

    def __init__(self, arrays: TaskArrays, batch_size: int, seed: int):
        self.data = _as_tensors(arrays)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.n_steps = max(math.ceil(len(y) / batch_size) for _, y in self.data.values())
        self._orders: dict[str, np.ndarray] = {task: np.empty(0, dtype=np.int64) for task in self.data}

    def __len__(self) -> int:
        return self.n_steps

    def _take(self, task: str) -> np.ndarray:
        n_rows = len(self.data[task][1])
        size = min(self.batch_size, n_rows)
        if self._orders[task].size < size:
            self._orders[task] = np.concatenate([self._orders[task], self.rng.permutation(n_rows)])
        rows, self._orders[task] = self._orders[task][:size], self._orders[task][size:]
        return rows

    def __iter__(self):
        for _ in range(self.n_steps):
            batch = {}
            for task, (x, y) in self.data.items():
                rows = torch.from_numpy(self._take(task))
                batch[task] = (x[rows], y[rows])
            yield batch


def whole_batches(arrays: TaskArrays) -> list[dict]:
    """All rows of every task in one batch (validation and test sets are small)."""
    return [_as_tensors(arrays)]
