"""Templates, template matching and the noise-fit filter on generated recordings."""

import numpy as np
import pytest
from spikeinterface.core import NumpyRecording, Templates
from spikeinterface.generation import NoiseGeneratorRecording
from spikeinterface.core.base import minimum_spike_dtype

from spikeinterface_deepsort.stages.matching import drop_noise_fits, peaks_to_spikes, projection_noise, spikes_to_sorting


def _templates(n_channels: int, rng) -> Templates:
    array = rng.normal(size=(2, 40, n_channels)).astype(np.float32)
    array[1] *= 0.2  # a small unit
    return Templates(templates_array=array, sampling_frequency=30_000.0, nbefore=10, unit_ids=np.arange(2),
                     channel_ids=np.arange(n_channels), sparsity_mask=np.ones((2, n_channels), bool), is_in_uV=False)


def test_projection_noise_of_white_noise_is_the_template_norm():
    rng = np.random.default_rng(0)
    recording = NoiseGeneratorRecording(num_channels=4, sampling_frequency=30_000.0, durations=[20.0],
                                        noise_levels=2.0, dtype="float32", seed=0)
    templates = _templates(4, rng)
    sigma = projection_noise(recording, templates, seed=0, n_chunks=5, chunk_size=20_000)
    expected = 2.0 * np.sqrt((templates.templates_array ** 2).sum(axis=(1, 2)))
    assert np.allclose(sigma, expected, rtol=0.1)


def test_small_fits_of_a_small_unit_are_dropped_but_not_those_of_a_large_one():
    rng = np.random.default_rng(1)
    templates = _templates(4, rng)
    norms = (templates.templates_array ** 2).sum(axis=(1, 2))
    sigma = np.sqrt(norms)  # unit-variance white noise
    spikes = np.zeros(4, dtype=[("sample_index", "int64"), ("cluster_index", "int64"), ("amplitude", "float32"),
                                ("segment_index", "int64")])
    spikes["cluster_index"] = [0, 0, 1, 1]
    spikes["amplitude"] = [0.6, 1.0, 0.6, 1.0]
    kept = drop_noise_fits(spikes, templates, sigma, min_z=4.0)
    z = spikes["amplitude"] * norms[spikes["cluster_index"]] / sigma[spikes["cluster_index"]]
    assert np.array_equal(kept, spikes[z >= 4.0])
    assert 0 in kept["cluster_index"] and len(kept) < len(spikes)
    assert len(drop_noise_fits(spikes, templates, sigma, min_z=0.0)) == 4


def test_peaks_to_spikes_drops_outliers_and_sorting_keeps_unit_ids():
    peaks = np.zeros(4, dtype=[("sample_index", "int64"), ("segment_index", "int64")])
    peaks["sample_index"] = [10, 20, 30, 40]
    spikes = peaks_to_spikes(peaks, np.array([0, -1, 1, 0]))
    assert spikes.dtype == np.dtype(minimum_spike_dtype)
    assert spikes["sample_index"].tolist() == [10, 30, 40]
    sorting = spikes_to_sorting(spikes, np.array([7, 9]), 30_000.0)
    assert list(sorting.unit_ids) == [7, 9]
    assert sorting.get_unit_spike_train(7).tolist() == [10, 40]


def test_projection_noise_is_the_robust_spread_of_the_sliding_projection_on_each_templates_channels():
    rng = np.random.default_rng(2)
    traces = rng.normal(size=(3000, 4)).astype(np.float32)
    recording = NumpyRecording(traces, sampling_frequency=30_000.0)
    mask = np.ones((2, 4), bool)
    mask[1, 2:] = False  # the second unit is seen on two channels only
    templates = Templates(templates_array=rng.normal(size=(2, 40, 4)).astype(np.float32), sampling_frequency=30_000.0,
                          nbefore=10, unit_ids=np.arange(2), channel_ids=np.arange(4), sparsity_mask=mask,
                          is_in_uV=False)
    sigma = projection_noise(recording, templates, seed=0, n_chunks=1, chunk_size=3000)
    for unit, channels in enumerate(templates.sparsity_mask):
        template = templates.templates_array[unit][:, channels]
        windows = np.lib.stride_tricks.sliding_window_view(traces[:, channels], template.shape[0], axis=0)
        projection = np.einsum("tcs,sc->t", windows, template)
        expected = np.median(np.abs(projection - np.median(projection))) / 0.6745
        assert sigma[unit] == pytest.approx(expected, rel=1e-4)
