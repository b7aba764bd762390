"""Stage 2: noise levels and peak detection on a generated recording, checked against its true spikes."""

import logging

import numpy as np
import pytest
import spikeinterface.core as sic

from spikeinterface_deepsort.params import SORTER_PARAMS
from spikeinterface_deepsort.stages.detection import detect, estimate_noise_levels

JOBS = dict(n_jobs=1, chunk_duration="1s", progress_bar=False)
DETECTION = SORTER_PARAMS.group(SORTER_PARAMS.defaults(), "detection")
PROTOTYPE = dict(prototype_ms_before=SORTER_PARAMS.defaults()["snippet_ms_before"],
                 prototype_ms_after=SORTER_PARAMS.defaults()["snippet_ms_after"])


@pytest.fixture(scope="module")
def noise_levels(small_case):
    recording, _ = small_case
    return estimate_noise_levels(recording, seed=0, job_kwargs=JOBS)


def _recall_per_unit(peaks, gt, tolerance):
    """Per unit, the fraction of its true spikes with a detected peak within ``tolerance`` samples."""
    samples = np.sort(peaks["sample_index"])
    recall = []
    for unit in gt.unit_ids:
        train = gt.get_unit_spike_train(unit)
        i = np.clip(np.searchsorted(samples, train), 1, len(samples) - 1)
        recall.append(np.mean(np.minimum(np.abs(samples[i] - train), np.abs(samples[i - 1] - train)) <= tolerance))
    return np.array(recall)


def _peak_to_peak_snr(recording, noise_levels):
    """Each true unit's template peak-to-peak on its largest channel, over the median noise level."""
    templates = np.asarray(recording._kwargs["templates"])  # the generator's injected templates
    return np.ptp(templates, axis=1).max(axis=1) / np.median(noise_levels)


def test_noise_levels_are_seeded_and_near_the_noise(small_case, noise_levels):
    recording, _ = small_case
    assert noise_levels.shape == (16,) and np.all(noise_levels > 0)
    np.testing.assert_array_equal(estimate_noise_levels(recording, seed=0, job_kwargs=JOBS), noise_levels)
    # A noise-only recording of the same generator: the MAD estimate is its standard deviation.
    quiet = sic.generate_recording(num_channels=4, durations=[5.0], sampling_frequency=30000.0, seed=1)
    std = quiet.get_traces().std(axis=0)
    np.testing.assert_allclose(estimate_noise_levels(quiet, seed=0, job_kwargs=JOBS), std, rtol=0.15)


@pytest.mark.parametrize("method", ["locally_exclusive", "matched_filtering"])
def test_peaks_lie_at_the_true_spikes(small_case, noise_levels, method):
    recording, gt = small_case
    params = dict(DETECTION, detection_method=method)
    peaks = detect(recording, noise_levels, **params, **PROTOTYPE, seed=0, job_kwargs=JOBS)
    assert len(peaks) > 0 and set(peaks.dtype.names) >= {"sample_index", "channel_index", "amplitude"}
    assert np.all(np.diff(peaks["sample_index"]) >= 0) and peaks["sample_index"].max() < recording.get_num_samples()
    if method == "locally_exclusive":
        assert np.all(peaks["amplitude"] < -DETECTION["detect_threshold"] * noise_levels[peaks["channel_index"]])
    # Every unit well above the threshold is found, spike by spike, within 1 ms.
    snr = _peak_to_peak_snr(recording, noise_levels)
    recall = _recall_per_unit(peaks, gt, tolerance=30)
    assert (snr > 10).sum() >= 3 and np.all(recall[snr > 10] > 0.95), (snr, recall)
    assert np.all(recall[snr < 2] < 0.5)  # and a unit buried in the noise is not invented
    # Few peaks where no neuron fires: most peaks are within 1 ms of a true spike.
    all_spikes = np.sort(gt.to_spike_vector()["sample_index"])
    i = np.clip(np.searchsorted(all_spikes, peaks["sample_index"]), 1, len(all_spikes) - 1)
    distance = np.minimum(np.abs(all_spikes[i] - peaks["sample_index"]), np.abs(all_spikes[i - 1] - peaks["sample_index"]))
    assert np.mean(distance <= 30) > 0.9
    again = detect(recording, noise_levels, **params, **PROTOTYPE, seed=0, job_kwargs=JOBS)
    np.testing.assert_array_equal(again, peaks)  # reproducible


def test_a_higher_threshold_finds_fewer_peaks(small_case, noise_levels):
    recording, _ = small_case
    counts = [len(detect(recording, noise_levels, **dict(DETECTION, detection_method="locally_exclusive",
                                                          detect_threshold=threshold), **PROTOTYPE, seed=0,
                         job_kwargs=JOBS)) for threshold in (4.0, 8.0)]
    assert counts[0] > counts[1]


def test_a_quiet_recording_falls_back_to_threshold_detection(caplog):
    quiet = sic.generate_recording(num_channels=4, durations=[3.0], sampling_frequency=30000.0, seed=2)
    noise_levels = estimate_noise_levels(quiet, seed=0, job_kwargs=JOBS)
    with caplog.at_level(logging.INFO, logger="spikeinterface_deepsort.stages.detection"):
        peaks = detect(quiet, noise_levels, **dict(DETECTION, detect_threshold=6.0), **PROTOTYPE, seed=0,
                       job_kwargs=JOBS)
    assert "plain threshold detection" in caplog.text
    assert len(peaks) < 50  # noise alone seldom crosses 6 MADs
