"""Overall metrics and SpikeInterface's per-class scores of labels turned into sortings."""

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score

from spikeinterface_deepsort.evaluation.multitask.evaluation import METRICS, classification_scores, per_class_scores

CLASSES = ["Track1", "Track3", "Track15"]


def test_perfect_and_known_scores():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert classification_scores(y, y) == {metric: 1.0 for metric in METRICS}
    scores = classification_scores(y, np.array([0, 1, 1, 1, 2, 0]))
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)


def test_per_class_scores_match_the_confusion():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 200)
    predicted = np.where(rng.random(200) < 0.3, rng.integers(0, 3, 200), truth)
    table = per_class_scores(truth, predicted, CLASSES)
    assert list(table["class"]) == CLASSES
    assert list(table["n_rows"]) == np.bincount(truth).tolist()
    np.testing.assert_allclose(table["recall"], recall_score(truth, predicted, average=None))
    np.testing.assert_allclose(table["precision"], precision_score(truth, predicted, average=None))
    hits = np.array([np.sum((truth == k) & (predicted == k)) for k in range(3)])
    union = np.bincount(truth, minlength=3) + np.bincount(predicted, minlength=3) - hits
    np.testing.assert_allclose(table["accuracy"], hits / union)


def test_a_class_never_predicted_scores_zero():
    truth = np.array([0, 0, 1, 1, 2, 2])
    table = per_class_scores(truth, np.zeros(6, dtype=int), CLASSES)
    np.testing.assert_allclose(table["recall"], [1, 0, 0])
    np.testing.assert_allclose(table["precision"], [2 / 6, 0, 0])
