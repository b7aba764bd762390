"""Scores of phase 1's test predictions: classification metrics, the confusion matrix, the spike-sorting comparison."""

import numpy as np
import pytest

from spikeinterface_deepsort.evaluation.classification.metrics import (classification_metrics,
                                                                       compare_predictions_to_reference,
                                                                       row_normalised_confusion)

NAMES = ["u1", "u2", "noise"]


def test_metrics_of_known_predictions():
    true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 0, 1, 1, 1, 2, 0])
    metrics = classification_metrics(true, predicted, NAMES)
    assert metrics["test_accuracy"] == pytest.approx(6 / 8)
    assert metrics["balanced_accuracy"] == pytest.approx((3 / 4 + 1 + 1 / 2) / 3)
    u1 = metrics["per_class"]["u1"]
    assert u1 == {"precision": pytest.approx(3 / 4), "recall": pytest.approx(3 / 4), "f1": pytest.approx(3 / 4),
                  "support": 4}
    assert metrics["per_class"]["u2"]["precision"] == pytest.approx(2 / 3)
    f1s = [c["f1"] for c in metrics["per_class"].values()]
    assert metrics["macro_f1"] == pytest.approx(np.mean(f1s))
    perfect = classification_metrics(true, true, NAMES)
    assert perfect["test_accuracy"] == perfect["balanced_accuracy"] == perfect["macro_f1"] == 1.0


def test_confusion_rows_are_each_true_class_fate():
    true = np.array([0, 0, 0, 0, 1, 1])
    predicted = np.array([0, 0, 1, 2, 1, 1])
    matrix = row_normalised_confusion(true, predicted, NAMES)
    assert list(matrix.index) == list(matrix.columns) == NAMES
    assert matrix.index.name == "true" and matrix.columns.name == "predicted"
    np.testing.assert_allclose(matrix.loc["u1"], [0.5, 0.25, 0.25])
    np.testing.assert_allclose(matrix.loc["u2"], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(matrix.loc["noise"], 0.0)  # a class absent from the test set: zeros, not NaN


def _peaks(n, seed=0):
    peaks = np.zeros(n, dtype=[("sample_index", "int64"), ("segment_index", "int64")])
    peaks["sample_index"] = np.sort(np.random.default_rng(seed).choice(300_000, n, replace=False))
    return peaks


def test_perfect_predictions_score_one_and_noise_called_a_unit_costs_precision():
    peaks = _peaks(60)
    true = np.repeat([0, 1, 2], 20)  # 2: noise windows
    per_unit = compare_predictions_to_reference(peaks, true, true.copy(), ["a", "b"], 1, 30000.0)
    assert list(per_unit.index) == ["a", "b"] and per_unit.index.name == "unit_id"
    assert list(per_unit["num_test_spikes"]) == [20, 20]
    np.testing.assert_allclose(per_unit[["accuracy", "recall", "precision"]].to_numpy(), 1.0)
    predicted = true.copy()
    predicted[40:45] = 0  # five noise windows called unit a
    predicted[20:30] = 2  # half of unit b missed
    per_unit = compare_predictions_to_reference(peaks, true, predicted, ["a", "b"], 1, 30000.0)
    assert per_unit.loc["a", "recall"] == 1.0 and per_unit.loc["a", "precision"] == pytest.approx(20 / 25)
    assert per_unit.loc["b", "recall"] == pytest.approx(0.5) and per_unit.loc["b", "precision"] == 1.0


def test_segments_are_scored_separately():
    peaks = _peaks(40, seed=1)
    peaks["segment_index"][20:] = 1
    true = np.tile(np.repeat([0, 1], 10), 2)
    per_unit = compare_predictions_to_reference(peaks, true, true.copy(), [7, 8], 2, 30000.0)
    assert list(per_unit.index) == ["7", "8"]
    np.testing.assert_allclose(per_unit["accuracy"], 1.0)
