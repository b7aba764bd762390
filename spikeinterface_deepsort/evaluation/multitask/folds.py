"""Stratified, shuffled, seeded folds with an inner validation split.

Each file is cut into ``n_folds`` test folds that keep its class proportions. The rows
outside a test fold are split once more, again per class, into the rows the network
trains on and the validation rows used for early stopping and for choosing
hyper-parameters. The test fold is thus never seen before it is scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from ...errors import ParameterError


@dataclass(frozen=True)
class FoldSplit:
    """Row indices of one fold: ``train`` and ``validation`` are disjoint parts of the complement of ``test``."""

    fold: int
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def _validation_rows(rows: np.ndarray, labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Take ``fraction`` of each class (at least one, never all) of ``rows`` for validation."""
    chosen = []
    for label in np.unique(labels[rows]):
        members = rng.permutation(rows[labels[rows] == label])
        n = int(round(fraction * members.size))
        chosen.append(members[: min(max(n, 1), members.size - 1)])
    return np.sort(np.concatenate(chosen))


def stratified_folds(labels: np.ndarray, n_folds: int = 5, seed: int = 0, validation_fraction: float = 0.2) -> list[FoldSplit]:
    """The ``n_folds`` splits of a file whose rows have ``labels``."""
    labels = np.asarray(labels)
    if n_folds < 2:
        raise ParameterError(f"folds must be >= 2, got {n_folds}.")
    if not 0.0 < validation_fraction < 1.0:
        raise ParameterError(f"validation_fraction must be in (0, 1), got {validation_fraction}.")
    smallest = np.bincount(np.unique(labels, return_inverse=True)[1]).min()
    if smallest < n_folds:
        raise ParameterError(f"a class has {smallest} rows, fewer than the {n_folds} folds; use fewer folds.")
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    rng = np.random.default_rng(seed)
    splits = []
    for fold, (outside, test) in enumerate(splitter.split(np.zeros(labels.size), labels)):
        validation = _validation_rows(outside, labels, validation_fraction, rng)
        train = np.setdiff1d(outside, validation)
        splits.append(FoldSplit(fold, train, validation, np.sort(test)))
    return splits
