"""How a multi-task batch becomes a loss for the package's training loop.

The loss is the task-weighted sum of each task's cross-entropy on raw logits, with
optional class weights per task, so one optimiser step moves the shared trunk and every
head at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...learning.training import StepResult, to_device


class MultiTaskLoss:
    """A ``loss_step`` for :func:`spikeinterface_deepsort.learning.training.fit`."""

    def __init__(self, task_weights: dict[str, float] | None = None, class_weights: dict[str, torch.Tensor] | None = None):
        self.task_weights = task_weights or {}
        self.class_weights = class_weights or {}

    def __call__(self, model, batch: dict, device: torch.device) -> StepResult:
        batch = to_device(batch, device)
        logits = model.forward_tasks({task: x for task, (x, _) in batch.items()})
        loss = torch.zeros((), device=device)
        n_correct = n_items = 0
        for task, (_, labels) in batch.items():
            weight = self.class_weights.get(task)
            task_loss = F.cross_entropy(logits[task].float(), labels, weight=None if weight is None else weight.to(device))
            loss = loss + self.task_weights.get(task, 1.0) * task_loss
            n_correct += int((logits[task].argmax(dim=1) == labels).sum())
            n_items += int(labels.shape[0])
        return StepResult(loss, n_correct, n_items)


def balanced_class_weights(labels, n_classes: int) -> torch.Tensor:
    """Inverse class frequency of the training rows, averaging 1 over the rows."""
    counts = torch.bincount(torch.as_tensor(labels, dtype=torch.long), minlength=n_classes).float()
    return counts.sum() / (n_classes * counts.clamp(min=1.0))
