"""The local split (stage 5b): a unit that holds two neurons comes apart; one neuron stays whole."""

import numpy as np
import pytest
import spikeinterface.core as sic
from spikeinterface.preprocessing import bandpass_filter, whiten
from spikeinterface.sortingcomponents.peak_detection import detect_peaks

from spikeinterface_deepsort.stages.splitting import split_units_locally

JOB_KWARGS = dict(n_jobs=1, progress_bar=False)


@pytest.fixture(scope="module")
def labelled_peaks():
    """Peaks of a 4-channel recording, each with its true unit (-1: none within 0.4 ms)."""
    recording, gt = sic.generate_ground_truth_recording(durations=[30.0], sampling_frequency=30000.0, num_channels=4,
                                                        num_units=3, seed=2)
    rec = whiten(bandpass_filter(recording), dtype="float32", seed=0)
    peaks = detect_peaks(rec, method="locally_exclusive", method_kwargs=dict(detect_threshold=5), job_kwargs=JOB_KWARGS)
    truth = gt.to_spike_vector()
    after = np.searchsorted(truth["sample_index"], peaks["sample_index"]).clip(1, len(truth) - 1)
    before = after - 1
    gap_before = np.abs(truth["sample_index"][before].astype(int) - peaks["sample_index"])
    gap_after = np.abs(truth["sample_index"][after].astype(int) - peaks["sample_index"])
    nearest = np.where(gap_before < gap_after, before, after)
    close = np.minimum(gap_before, gap_after) <= 12
    return rec, peaks, np.where(close, truth["unit_index"][nearest], -1)


def _purity(split, truth, unit):
    """The share of ``unit``'s peaks in the split label that holds most of them."""
    mine = split[(truth == unit) & (split >= 0)]
    return np.bincount(mine).max() / (truth == unit).sum() if len(mine) else 0.0


def test_a_unit_holding_two_neurons_is_split_and_the_second_pass_units_keep_their_peaks(labelled_peaks):
    rec, peaks, truth = labelled_peaks
    counts = np.bincount(truth[truth >= 0])
    a, b, c = np.argsort(-counts)[:3]
    labels = np.full(len(peaks), -1)
    labels[(truth == a) | (truth == b)] = 0  # one unit, two neurons
    labels[truth == c] = 1  # a second-pass unit: never split
    split, first_small = split_units_locally(rec, peaks, labels, first_small_label=1, seed=0, job_kwargs=JOB_KWARGS)
    main_a = np.bincount(split[(truth == a) & (split >= 0)]).argmax()
    main_b = np.bincount(split[(truth == b) & (split >= 0)]).argmax()
    assert main_a != main_b and main_a < first_small and main_b < first_small
    assert _purity(split, truth, a) > 0.8 and _purity(split, truth, b) > 0.8
    assert (split[truth == c] == first_small).all()


def test_without_first_pass_units_nothing_changes(labelled_peaks):
    rec, peaks, _ = labelled_peaks
    labels = np.full(len(peaks), -1)
    out, first_small = split_units_locally(rec, peaks, labels, first_small_label=0, seed=0, job_kwargs=JOB_KWARGS)
    np.testing.assert_array_equal(out, labels)
    assert first_small == 0
