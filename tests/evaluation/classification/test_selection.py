"""Choosing units, spikes and spike-free noise windows for phase 1."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spikeinterface.core import NumpySorting

from spikeinterface_deepsort.errors import DataFormatError, ParameterError
from spikeinterface_deepsort.evaluation.classification.selection import (
    NOISE_LABEL,
    build_windows,
    parse_count,
    select_units,
    spike_free_centres,
)

NBEFORE, NAFTER = 30, 45


def test_parse_count_reads_numbers_and_keywords():
    assert parse_count("all", "noise", "all") is None
    assert parse_count("MAX", "max_spikes", "max") is None
    assert parse_count("12", "noise", "all") == 12
    assert parse_count(0, "noise", "all") == 0
    with pytest.raises(ParameterError, match="noise must be a whole number >= 0 or 'all'"):
        parse_count("some", "noise", "all")
    with pytest.raises(ParameterError, match="noise"):
        parse_count(-3, "noise", "all")


def test_units_are_drawn_within_the_range_and_reproducibly():
    counts = {"a": 50, "b": 1500, "c": 2000, "d": 9000, "e": 1000, "f": 5000}
    chosen = select_units(counts, 1000, 5000, 3, np.random.default_rng(1))
    assert len(chosen) == 3 and set(chosen) <= {"b", "c", "e", "f"}
    assert chosen == select_units(counts, 1000, 5000, 3, np.random.default_rng(1))
    assert set(select_units(counts, 1000, None, 5, np.random.default_rng(0))) == {"b", "c", "d", "e", "f"}


def test_too_few_units_in_range_is_refused():
    with pytest.raises(DataFormatError, match="only 2 unit\\(s\\) with between 1000 and 5000 spikes, but 3"):
        select_units({"a": 10, "b": 1200, "c": 3000}, 1000, 5000, 3, np.random.default_rng(0))


def brute_force_free(spikes, num_samples):
    """Every tiling window whose samples meet no spike's window, checked sample by sample."""
    occupied = np.zeros(num_samples + NBEFORE + NAFTER, dtype=bool)
    for s in spikes:
        occupied[max(s - NBEFORE, 0): s + NAFTER] = True
    centres = np.arange(NBEFORE, num_samples - NAFTER + 1, NBEFORE + NAFTER)
    return np.array([c for c in centres if not occupied[c - NBEFORE: c + NAFTER].any()], dtype="int64")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3000), max_size=40), st.integers(200, 3000))
def test_noise_windows_share_no_sample_with_any_spike_window(spikes, num_samples):
    spikes = np.array([s for s in spikes if s < num_samples], dtype="int64")
    assert np.array_equal(spike_free_centres(spikes, num_samples, NBEFORE, NAFTER), brute_force_free(spikes, num_samples))


def make_sorting():
    rng = np.random.default_rng(0)
    samples = np.sort(rng.choice(np.arange(100, 59900), size=300, replace=False))
    labels = rng.integers(0, 3, size=300)
    return NumpySorting.from_samples_and_labels([samples], [labels], 30000.0)


def test_windows_hold_the_chosen_units_and_spike_free_noise():
    sorting = make_sorting()
    windows = build_windows(sorting, [60000], [0, 2], {0: 5, 2: 7}, 16, None, 40, NBEFORE, NAFTER,
                            np.random.default_rng(0))
    assert windows.class_names == ["0", "2", NOISE_LABEL]
    counts = sorting.count_num_spikes_per_unit()
    assert np.bincount(windows.labels).tolist() == [counts[0], counts[2], 40]
    assert np.all(np.diff(windows.peaks["sample_index"]) >= 0)
    assert set(windows.peaks["channel_index"][windows.labels == 0]) == {5}
    all_spikes = sorting.to_spike_vector()["sample_index"]
    for centre in windows.peaks["sample_index"][windows.labels == 2]:
        assert np.all(np.abs(all_spikes - centre) >= NBEFORE + NAFTER)  # not even an overlapping spike window


def test_spikes_per_unit_subsamples_each_unit():
    windows = build_windows(make_sorting(), [60000], [0, 1], {0: 0, 1: 1}, 4, 20, 0, NBEFORE, NAFTER,
                            np.random.default_rng(0))
    assert np.bincount(windows.labels).tolist() == [20, 20]
    assert windows.class_names == ["0", "1"]


def test_asking_for_more_noise_than_exists_is_refused():
    with pytest.raises(ParameterError, match="spike-free windows exist"):
        build_windows(make_sorting(), [60000], [0, 1], {0: 0, 1: 1}, 4, None, 10**6, NBEFORE, NAFTER,
                      np.random.default_rng(0))
