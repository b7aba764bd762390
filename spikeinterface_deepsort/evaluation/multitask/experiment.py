"""Training one configuration on one fold, and scoring it.

:func:`train_fold` sees only the training and validation rows of each file: it fits the
normalisers on the training rows, trains through the package's ``fit`` with early
stopping on the validation loss, and scores the validation rows (the only scores used
to choose hyper-parameters). :func:`score_test` is called once per fold, for the chosen
configuration, and is the only place test rows are read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import torch

from ...errors import ParameterError
from ...learning.torch_utils import seed_everything
from ...settings import resolve_device
from ...learning.training import fit, predict
from .batches import MultiTaskBatches, whole_batches
from .evaluation import classification_scores, per_class_scores
from .folds import FoldSplit
from .loader import WaveformDataset
from .loss import MultiTaskLoss, balanced_class_weights
from .networks import MultiHeadClassifier, build_model
from .normalisation import Normaliser

CLASS_WEIGHTINGS = ("none", "balanced")


@dataclass(frozen=True)
class TrainingSettings:
    """What stays fixed across trials (the search varies ``params`` only)."""

    epochs: int = 40
    patience: int = 5
    batch_size: int = 64
    class_weights: str = "none"
    task_weights: dict[str, float] = field(default_factory=dict)
    standardise: bool = True
    device: str = "auto"

    def __post_init__(self):
        if self.class_weights not in CLASS_WEIGHTINGS:
            raise ParameterError(f"class_weights must be one of {CLASS_WEIGHTINGS}, got {self.class_weights!r}.")
        if self.epochs < 1 or self.patience < 1 or self.batch_size < 1:
            raise ParameterError("epochs, patience and batch_size must be positive.")


@dataclass
class FoldModel:
    """A network trained on one fold, with the normalisers fitted on that fold's training rows."""

    fold: int
    model: MultiHeadClassifier
    normalisers: dict[str, Normaliser]
    validation_scores: dict[str, dict[str, float]]
    best_epoch: int
    seconds: float


def predict_labels(model: MultiHeadClassifier, waveforms: np.ndarray, task: str, device: torch.device) -> np.ndarray:
    model.eval()  # dropout off, batch-norm running statistics: scores must not depend on the batch
    batch = [(torch.as_tensor(waveforms, dtype=torch.float32),)]
    return predict(partial(model, task=task), batch, device).argmax(dim=1).numpy()


def train_fold(
    model_name: str,
    params: dict,
    datasets: list[WaveformDataset],
    splits: dict[str, FoldSplit],
    settings: TrainingSettings,
    seed: int,
) -> FoldModel:
    """Train ``model_name`` with ``params`` on the training rows of one fold of every file in ``datasets``."""
    started = time.perf_counter()
    seed_everything(seed)
    device = resolve_device(settings.device)
    normalisers, train, validation = {}, {}, {}
    for data in datasets:
        split = splits[data.name]
        normaliser = Normaliser(params["normalisation"], settings.standardise).fit(data.waveforms[split.train])
        normalisers[data.name] = normaliser
        train[data.name] = (normaliser.transform(data.waveforms[split.train]), data.labels[split.train])
        validation[data.name] = (normaliser.transform(data.waveforms[split.validation]), data.labels[split.validation])
    class_weights = None
    if settings.class_weights == "balanced":
        class_weights = {data.name: balanced_class_weights(train[data.name][1], len(data.classes)) for data in datasets}
    task_weights = settings.task_weights if len(datasets) > 1 else {}  # weights balance files against each other
    model = build_model(model_name, datasets[0].n_samples, {data.name: len(data.classes) for data in datasets}, params)
    result = fit(
        model,
        MultiTaskBatches(train, settings.batch_size, seed),
        epochs=settings.epochs,
        device=device,
        learning_rate=params["learning_rate"],
        loss_step=MultiTaskLoss(task_weights, class_weights),
        val_loader=whole_batches(validation),
        patience=settings.patience,
        progress=False,
        description=model_name,
    )
    scores = {
        task: classification_scores(labels, predict_labels(model, waveforms, task, device))
        for task, (waveforms, labels) in validation.items()
    }
    fold = next(iter(splits.values())).fold
    return FoldModel(fold, model.cpu(), normalisers, scores, result.best_epoch, time.perf_counter() - started)


def score_test(fold_model: FoldModel, data: WaveformDataset, split: FoldSplit) -> tuple[dict, pd.DataFrame]:
    """Overall and per-class scores of one file's test fold."""
    waveforms = fold_model.normalisers[data.name].transform(data.waveforms[split.test])
    predicted = predict_labels(fold_model.model, waveforms, data.name, torch.device("cpu"))
    truth = data.labels[split.test]
    return classification_scores(truth, predicted), per_class_scores(truth, predicted, data.classes)
