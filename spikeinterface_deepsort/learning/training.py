"""The one training loop of the package.

DeepCluster rounds in the sorter, phase 1's supervised classifier and the multi-task
benchmarks all train through :func:`fit`. What differs between them is only how a
batch becomes a loss, which the caller passes as ``loss_step``; the loop owns the
rest: optimiser steps per batch, validation, early stopping with the best weights
restored, mixed precision on CUDA, halving the batch after a CUDA out-of-memory error,
progress bars, and an atomic checkpoint after every epoch so that an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


@dataclass
class StepResult:
    """What one batch contributes: the loss to minimise and its classification counts."""

    loss: torch.Tensor
    n_correct: int
    n_items: int


LossStep = Callable[[nn.Module, Any, torch.device], StepResult]


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a tensor, or tensors nested in tuples/lists/dicts, to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch


def classification_step(
    model: nn.Module, batch: Any, device: torch.device, class_weights: torch.Tensor | None = None
) -> StepResult:
    """Cross-entropy on raw logits for an ``(inputs, labels)`` batch."""
    inputs, labels = to_device(batch[:2], device)
    logits = model(inputs)
    weights = class_weights.to(device) if class_weights is not None else None
    loss = F.cross_entropy(logits.float(), labels, weight=weights)
    n_correct = int((logits.argmax(dim=1) == labels).sum())
    return StepResult(loss, n_correct, int(labels.shape[0]))


class EpochShuffleSampler(torch.utils.data.Sampler):
    """Shuffles anew each epoch with an order that depends only on (seed, epoch).

    ``fit`` calls ``set_epoch`` before every epoch, so a run resumed from a checkpoint
    draws exactly the batches the uninterrupted run would have drawn. With ``dataset``, its
    ``epoch`` follows too, so that seeded augmentation also depends on (seed, epoch) alone.
    """

    def __init__(self, n_items: int, seed: int = 0, dataset=None):
        self.n_items, self.seed, self.epoch, self.dataset = int(n_items), int(seed), 0, dataset

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if self.dataset is not None:
            self.dataset.epoch = self.epoch

    def __len__(self) -> int:
        return self.n_items

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n_items, generator=generator).tolist())


@dataclass
class TrainingResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    step_losses: list[float] = field(default_factory=list)  # mean loss of each optimiser step's batch


def _split_batch(batch: Any, n_parts: int) -> list[Any]:
    """Split every tensor of a batch along its first axis (for out-of-memory retries)."""
    if isinstance(batch, torch.Tensor):
        return list(torch.chunk(batch, n_parts))
    if isinstance(batch, (list, tuple)):
        parts = [_split_batch(item, n_parts) for item in batch]
        n = min(len(p) for p in parts)
        return [type(batch)(p[i] for p in parts) for i in range(n)]
    if isinstance(batch, dict):
        parts = {key: _split_batch(value, n_parts) for key, value in batch.items()}
        n = min(len(p) for p in parts.values())
        return [{key: p[i] for key, p in parts.items()} for i in range(n)]
    return [batch] * n_parts


def _is_cuda_oom(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or "CUDA out of memory" in str(error)


class _Stepper:
    """Runs one optimiser step on a batch, splitting it into smaller pieces after a CUDA OOM."""

    def __init__(self, model, optimizer, loss_step, device, grad_clip):
        self.model, self.optimizer, self.loss_step = model, optimizer, loss_step
        self.device, self.grad_clip = device, grad_clip
        self.n_parts = 1
        self.autocast = device.type == "cuda"

    def __call__(self, batch) -> tuple[float, int, int]:
        while True:
            try:
                return self._step(batch)
            except RuntimeError as error:
                if not _is_cuda_oom(error) or self.n_parts >= 64:
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                self.n_parts *= 2
                logger.warning("CUDA out of memory: halving the batch (now split in %d parts) and going on", self.n_parts)

    def _step(self, batch) -> tuple[float, int, int]:
        self.optimizer.zero_grad(set_to_none=True)
        total_loss, total_correct, total_items = 0.0, 0, 0
        pieces = _split_batch(batch, self.n_parts) if self.n_parts > 1 else [batch]
        for piece in pieces:
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.autocast):
                result = self.loss_step(self.model, piece, self.device)
            (result.loss / len(pieces)).backward()
            total_loss += float(result.loss.detach()) * result.n_items
            total_correct += result.n_correct
            total_items += result.n_items
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return total_loss, total_correct, total_items


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device, loss_step: LossStep = classification_step) -> dict:
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode."""
    model.eval()
    total_loss, total_correct, total_items = 0.0, 0, 0
    for batch in loader:
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            result = loss_step(model, batch, device)
        total_loss += float(result.loss) * result.n_items
        total_correct += result.n_correct
        total_items += result.n_items
    n = max(total_items, 1)
    return {"loss": total_loss / n, "accuracy": total_correct / n}


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict | None:
    """Load a checkpoint, or return None (with a warning) if it is missing or corrupted."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
            raise ValueError("not a deepspikesort checkpoint")
        return state
    except Exception as error:  # a torn or foreign file: recompute rather than trust it
        logger.warning("Checkpoint %s is unreadable (%s); that stage is recomputed.", path, error)
        return None


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def fit(
    model: nn.Module,
    train_loader: Iterable,
    *,
    epochs: int,
    device: torch.device | str = "cpu",
    optimizer: torch.optim.Optimizer | None = None,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
    loss_step: LossStep = classification_step,
    val_loader: Iterable | None = None,
    patience: int | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    grad_clip: float | None = 5.0,
    progress: bool = True,
    description: str = "training",
    on_epoch_end: Callable[[dict], None] | None = None,
    is_main_process: bool = True,
) -> TrainingResult:
    """Train ``model`` for up to ``epochs`` epochs, one optimiser step per batch.

    With ``val_loader`` the validation loss is tracked; with ``patience`` training stops
    after that many epochs without improvement and the best weights are restored. With
    ``checkpoint_path`` a checkpoint is written after every epoch and, with ``resume``,
    read back so that training continues from the last finished epoch.
    ``is_main_process`` is False on the non-zero ranks of a torchrun job: they train
    but neither print progress nor write checkpoints.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    device = torch.device(device)
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)

    result = TrainingResult()
    best_loss, best_state, bad_epochs, start_epoch = math.inf, None, 0, 0
    state = load_checkpoint(checkpoint_path) if checkpoint_path is not None and resume else None
    if state is not None:
        _unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        result.history, result.best_epoch = state["history"], state["best_epoch"]
        best_loss, best_state = state["best_loss"], state["best_state"]
        bad_epochs, start_epoch = state["bad_epochs"], state["epoch"] + 1
        logger.info("%s: resumed from %s after epoch %d", description, checkpoint_path, state["epoch"] + 1)

    stepper = _Stepper(model, optimizer, loss_step, device, grad_clip)
    for epoch in range(start_epoch, epochs):
        if patience is not None and bad_epochs >= patience:
            result.stopped_early = True
            break
        if hasattr(getattr(train_loader, "sampler", None), "set_epoch"):
            train_loader.sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        bar = tqdm(train_loader, desc=f"{description} epoch {epoch + 1}/{epochs}", leave=False,
                   disable=not (progress and is_main_process))
        record = {"epoch": epoch + 1, **_train_epoch(model, bar, stepper, result.step_losses)}
        monitored = record["train_loss"]
        if val_loader is not None:
            val = evaluate(model, val_loader, device, loss_step)
            record["val_loss"], record["val_accuracy"] = val["loss"], val["accuracy"]
            monitored = val["loss"]
        record["seconds"] = time.perf_counter() - t0
        result.history.append(record)
        if monitored < best_loss - 1e-6:
            best_loss, bad_epochs, result.best_epoch = monitored, 0, epoch + 1
            best_state = copy.deepcopy(_unwrap(model).state_dict())
        else:
            bad_epochs += 1
        logger.debug("%s %s", description, record)
        if on_epoch_end is not None:
            on_epoch_end(record)
        if checkpoint_path is not None and is_main_process:
            save_atomic({"model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                         "history": result.history, "best_loss": best_loss, "best_state": best_state,
                         "best_epoch": result.best_epoch, "bad_epochs": bad_epochs}, Path(checkpoint_path))
    if patience is not None and best_state is not None:
        _unwrap(model).load_state_dict(best_state)
    return result


def _train_epoch(model, batches, stepper, step_losses: list) -> dict:
    """One pass over ``batches``, one optimiser step each; the epoch's mean loss and accuracy."""
    model.train()
    total_loss, total_correct, total_items = 0.0, 0, 0
    for batch in batches:
        loss, correct, items = stepper(batch)
        step_losses.append(loss / max(items, 1))
        total_loss += loss
        total_correct += correct
        total_items += items
        batches.set_postfix(loss=f"{total_loss / max(total_items, 1):.3f}")
    return {"train_loss": total_loss / max(total_items, 1), "train_accuracy": total_correct / max(total_items, 1)}


@torch.no_grad()
def predict(
    model: Callable[[torch.Tensor], torch.Tensor],
    loader: Iterable,
    device: torch.device | str = "cpu",
    progress: bool = False,
    description: str = "embedding",
    dropout: bool = False,
) -> torch.Tensor:
    """Apply ``model`` to every batch's first element and concatenate the outputs on the CPU.

    ``model`` is a module or a bound method of one (``model.embed``); either way the module is put
    in eval mode first, so batch norm uses (and does not update) its running statistics and the
    output of an input does not depend on its batch. ``dropout=True`` keeps the dropout layers
    active (a stochastic pass, drawn from torch's global generator: seed it for reproducibility).
    """
    device = torch.device(device)
    module = model if isinstance(model, nn.Module) else getattr(model, "__self__", None)
    if isinstance(module, nn.Module):
        module.eval()
        for layer in module.modules():
            if isinstance(layer, nn.Dropout):
                layer.train(dropout)
    outputs = []
    for batch in tqdm(loader, desc=description, leave=False, disable=not progress):
        inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            outputs.append(model(inputs.to(device, non_blocking=True)).float().cpu())
    return torch.cat(outputs) if outputs else torch.empty(0)
