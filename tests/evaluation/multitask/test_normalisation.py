"""Per-waveform scaling and the per-sample standardisation fitted on training rows."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spikeinterface_deepsort.errors import ParameterError
from spikeinterface_deepsort.evaluation.multitask.normalisation import NORMALISATIONS, Normaliser, scale_waveforms

ROWS = np.array([[0.0, -4.0, 2.0, 1.0], [3.0, 1.0, -1.0, 1.0], [5.0, 5.0, 5.0, 5.0]], dtype=np.float32)


def test_peak_absolute_divides_by_largest_magnitude_keeping_the_sign():
    scaled = scale_waveforms(ROWS, "peak-absolute")
    np.testing.assert_allclose(scaled[0], [0.0, -1.0, 0.5, 0.25], atol=1e-6)
    np.testing.assert_allclose(scaled[1], [1.0, 1 / 3, -1 / 3, 1 / 3], atol=1e-6)


def test_zscore_and_min_max_per_row():
    z = scale_waveforms(ROWS, "zscore")
    np.testing.assert_allclose(z[:2].mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(z[:2].std(axis=1), 1, atol=1e-5)
    m = scale_waveforms(ROWS, "min-max")
    np.testing.assert_allclose(m[0], [4 / 6, 0, 1, 5 / 6], atol=1e-6)
    np.testing.assert_allclose(scale_waveforms(ROWS, "none"), ROWS)


@pytest.mark.parametrize("method", NORMALISATIONS)
def test_flat_rows_give_finite_values(method):
    assert np.isfinite(scale_waveforms(ROWS, method)).all()


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, (5, 8), elements=st.floats(-1e4, 1e4, width=32)))
def test_peak_absolute_bounds(rows):
    scaled = scale_waveforms(rows, "peak-absolute")
    assert np.all(np.abs(scaled) <= 1.0 + 1e-5)


def test_standardisation_uses_training_rows_only():
    rng = np.random.default_rng(0)
    train, other = rng.normal(size=(50, 4)), rng.normal(loc=100.0, size=(10, 4))
    normaliser = Normaliser("none").fit(train)
    np.testing.assert_allclose(normaliser.mean, train.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(normaliser.transform(train).mean(axis=0), 0, atol=1e-5)
    assert normaliser.transform(other).mean() > 50  # test rows keep their offset: nothing was learned from them
    assert np.allclose(Normaliser("none", standardise=False).fit(train).transform(other), other)


def test_errors():
    with pytest.raises(ParameterError, match="Unknown normalisation"):
        Normaliser("max")
    with pytest.raises(RuntimeError, match="before fit"):
        Normaliser("zscore").transform(ROWS)
