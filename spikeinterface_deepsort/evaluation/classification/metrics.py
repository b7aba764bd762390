"""Scores of phase 1's test predictions: classification metrics and a SpikeInterface comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from spikeinterface.comparison import compare_sorter_to_ground_truth
from spikeinterface.core import NumpySorting


def classification_metrics(true: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, balanced accuracy, macro F1, and precision/recall/F1/support per class."""
    labels = np.arange(len(class_names))
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0)
    return {
        "test_accuracy": float(accuracy_score(true, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(true, predicted)),
        "macro_f1": float(f1_score(true, predicted, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
        },
    }


def row_normalised_confusion(true: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Confusion matrix whose rows (true classes) sum to 1: each row reads as that class's fate."""
    counts = confusion_matrix(true, predicted, labels=np.arange(len(class_names))).astype(float)
    rows = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    frame = pd.DataFrame(fractions, index=class_names, columns=class_names)
    frame.index.name, frame.columns.name = "true", "predicted"
    return frame


def compare_predictions_to_reference(peaks: np.ndarray, true: np.ndarray, predicted: np.ndarray, unit_ids: list,
                                     num_segments: int, sampling_frequency: float) -> pd.DataFrame:
    """Per-unit accuracy, recall and precision of the predictions, scored the spike-sorting way.

    The test windows predicted as a unit form a Sorting; the test windows that are that
    unit's reference spikes form the ground truth (exhaustive: the test set holds all of
    them). Noise windows predicted as a unit count as false positives.
    """
    n_units = len(unit_ids)
    unit_array = np.asarray(unit_ids)

    def sorting_of(mask: np.ndarray, labels: np.ndarray) -> NumpySorting:
        samples, units = [], []
        for segment in range(num_segments):
            in_segment = mask & (peaks["segment_index"] == segment)
            samples.append(peaks["sample_index"][in_segment])
            units.append(unit_array[labels[in_segment]])
        return NumpySorting.from_samples_and_labels(samples, units, sampling_frequency, unit_ids=unit_array)

    reference = sorting_of(true < n_units, true)
    tested = sorting_of(predicted < n_units, predicted)
    comparison = compare_sorter_to_ground_truth(reference, tested, gt_name="reference", tested_name="cnn",
                                                exhaustive_gt=True)
    performance = comparison.get_performance(method="by_unit")[["accuracy", "recall", "precision"]]
    performance.index = [str(unit) for unit in performance.index]
    performance.index.name = "unit_id"
    performance.insert(0, "num_test_spikes", [int(np.sum(true == i)) for i in range(n_units)])
    return performance.astype({"accuracy": float, "recall": float, "precision": float})
