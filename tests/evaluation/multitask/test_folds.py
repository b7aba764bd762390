"""Stratified, shuffled, seeded, disjoint folds with an inner validation split."""

import numpy as np
import pytest

from spikeinterface_deepsort.errors import ParameterError
from spikeinterface_deepsort.evaluation.multitask.folds import stratified_folds

LABELS = np.repeat([0, 1, 2], [50, 30, 20])  # sorted by class, as a file written track by track


def test_test_folds_partition_the_rows_and_keep_class_proportions():
    splits = stratified_folds(LABELS, n_folds=5, seed=1)
    assert len(splits) == 5
    tests = np.concatenate([s.test for s in splits])
    assert np.array_equal(np.sort(tests), np.arange(LABELS.size))
    for split in splits:
        assert np.array_equal(np.bincount(LABELS[split.test]), [10, 6, 4])


def test_train_validation_test_disjoint_and_complete():
    for split in stratified_folds(LABELS, n_folds=4, seed=0, validation_fraction=0.25):
        parts = [set(split.train), set(split.validation), set(split.test)]
        assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
        assert set().union(*parts) == set(range(LABELS.size))
        assert set(np.unique(LABELS[split.validation])) == {0, 1, 2}
        counts_val = np.bincount(LABELS[split.validation], minlength=3)
        counts_out = np.bincount(LABELS[np.concatenate([split.train, split.validation])], minlength=3)
        np.testing.assert_allclose(counts_val / counts_out, 0.25, atol=0.05)


def test_shuffled_not_contiguous_blocks():
    first = stratified_folds(LABELS, n_folds=5, seed=0)[0].test
    assert np.any(np.diff(first) > 1)
    assert not np.array_equal(first, np.arange(first.size))


def test_seeded():
    a, b, c = (stratified_folds(LABELS, 5, seed) for seed in (7, 7, 8))
    assert all(np.array_equal(x.test, y.test) and np.array_equal(x.validation, y.validation) for x, y in zip(a, b))
    assert not all(np.array_equal(x.test, y.test) for x, y in zip(a, c))


def test_errors():
    with pytest.raises(ParameterError, match="fewer than the 5 folds"):
        stratified_folds(np.repeat([0, 1], [10, 3]), n_folds=5)
    with pytest.raises(ParameterError, match="folds must be >= 2"):
        stratified_folds(LABELS, n_folds=1)
    with pytest.raises(ParameterError, match="validation_fraction"):
        stratified_folds(LABELS, validation_fraction=1.0)
