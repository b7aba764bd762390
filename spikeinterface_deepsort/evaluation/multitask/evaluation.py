"""Scores of a fold's predictions.

Overall scores come from scikit-learn. Per-class scores come from SpikeInterface's
ground-truth comparison: each waveform becomes a "spike" at its own time, the true and
the predicted labels become two sortings with the same unit names, and the comparison's
event counts and agreement scores give, for each class, SpikeInterface's accuracy
(hits / (hits + misses + false positives)), recall and precision of the predicted unit
with the same name. The same name, not the Hungarian match: in classification the label
is the claim being scored, and the Hungarian match leaves poor classes (A12) unmatched.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, matthews_corrcoef
from spikeinterface.comparison import compare_sorter_to_ground_truth
from spikeinterface.core import NumpySorting

METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "mcc")
# Spikes far apart on a fake clock: only a waveform's own two labels can ever be matched.
_SAMPLING_FREQUENCY = 30_000.0
_SPACING = 100  # samples between fake spikes, much more than the comparison's 0.4 ms window


def classification_scores(true_labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(true_labels, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(true_labels, predicted)),
        "macro_f1": float(f1_score(true_labels, predicted, average="macro", zero_division=0)),
        "mcc": float(matthews_corrcoef(true_labels, predicted)),
    }


def _as_sorting(labels: np.ndarray, classes: list[str]) -> NumpySorting:
    names = np.asarray(classes, dtype=object)[labels].astype(str)
    samples = np.arange(labels.size, dtype=np.int64) * _SPACING
    return NumpySorting.from_samples_and_labels([samples], [names], _SAMPLING_FREQUENCY, unit_ids=list(classes))


def per_class_scores(true_labels: np.ndarray, predicted: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """One row per class: its test rows and SpikeInterface's accuracy, recall and precision."""
    true_labels, predicted = np.asarray(true_labels), np.asarray(predicted)
    comparison = compare_sorter_to_ground_truth(
        _as_sorting(true_labels, classes), _as_sorting(predicted, classes), exhaustive_gt=True
    )
    hits = np.array([comparison.match_event_count.loc[name, name] for name in classes], dtype=float)
    n_true = np.bincount(true_labels, minlength=len(classes)).astype(float)
    n_predicted = np.bincount(predicted, minlength=len(classes)).astype(float)
    return pd.DataFrame(
        {
            "class": list(classes),
            "n_rows": n_true.astype(int),
            "accuracy": [float(comparison.agreement_scores.loc[name, name]) for name in classes],
            "recall": hits / np.maximum(n_true, 1),
            "precision": np.divide(hits, n_predicted, out=np.zeros_like(hits), where=n_predicted > 0),
        }
    )
