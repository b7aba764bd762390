"""Merging of over-split units: fragments of one neuron join, distinct neurons stay apart."""

import numpy as np
from probeinterface import generate_linear_probe
from spikeinterface.core import Templates
from spikeinterface.core.base import base_peak_dtype

from spikeinterface_deepsort.stages.curation import (
    cross_coincidences,
    curate_units,
    difference_noise_variance,
    fold_fragment_units,
    merge_over_split_units,
    respects_refractory_period,
    template_difference,
    templates_after_fold,
    unexplained_energy,
)

FS = 30_000.0
N_SAMPLES = FS * 60


def _waveform(shift: float, width: float = 6.0) -> np.ndarray:
    t = np.arange(60)
    return -np.exp(-0.5 * ((t - 20 - shift) / width) ** 2) + 0.3 * np.exp(-0.5 * ((t - 35 - shift) / 8.0) ** 2)


def _templates(waveforms_by_channel: list[np.ndarray]) -> Templates:
    probe = generate_linear_probe(num_elec=4, ypitch=20)
    probe.set_device_channel_indices(np.arange(4))
    array = np.stack(waveforms_by_channel).astype(np.float32)  # (units, samples, channels)
    return Templates(templates_array=array, sampling_frequency=FS, nbefore=20, unit_ids=np.arange(len(array)),
                     channel_ids=np.arange(4), sparsity_mask=np.ones((len(array), 4), bool), probe=probe,
                     is_in_uV=False)


def _train(rng, rate_hz: float, refractory_samples: int = 60) -> np.ndarray:
    gaps = rng.exponential(FS / rate_hz, size=int(rate_hz * 70)) + refractory_samples
    times = np.cumsum(gaps).astype(np.int64)
    return times[times < N_SAMPLES]


def _peaks(trains: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    times = np.concatenate(trains)
    labels = np.concatenate([np.full(len(t), i) for i, t in enumerate(trains)])
    order = np.argsort(times, kind="stable")
    peaks = np.zeros(len(times), dtype=base_peak_dtype)
    peaks["sample_index"] = times[order]
    return peaks, labels[order]


def test_template_difference_is_zero_for_identical_and_finds_the_lag():
    a = np.stack([_waveform(0.0)] * 4, axis=1)
    b = np.stack([_waveform(3.0)] * 4, axis=1)
    assert template_difference(a, a, 0) == 0.0
    assert template_difference(a, b, 0) > 0.2
    assert template_difference(a, b, 4) < 0.05


def test_coincidences_count_spikes_within_the_window():
    assert cross_coincidences(np.array([100, 500, 900]), np.array([130, 2000]), 45) == 1
    assert cross_coincidences(np.array([100]), np.array([]), 45) == 0


def test_two_fragments_of_one_neuron_are_merged():
    rng = np.random.default_rng(0)
    train = _train(rng, 15.0)
    half = rng.random(len(train)) < 0.5  # one neuron split in two clusters at random
    shape = np.stack([_waveform(0.0), 0.5 * _waveform(0.0), 0.2 * _waveform(0.0), 0.1 * _waveform(0.0)], axis=1)
    templates = _templates([shape, shape * 0.95])
    peaks, labels = _peaks([train[half], train[~half]])
    merged = merge_over_split_units(templates, peaks, labels, 0.3, int(N_SAMPLES))
    assert len(np.unique(merged)) == 1


def test_distinct_waveforms_and_independent_neurons_stay_apart():
    rng = np.random.default_rng(1)
    shape = np.stack([_waveform(0.0), 0.5 * _waveform(0.0), 0.2 * _waveform(0.0), 0.1 * _waveform(0.0)], axis=1)
    other = np.stack([0.1 * _waveform(0.0, 3.0), 0.3 * _waveform(0.0, 3.0), _waveform(0.0, 3.0), 0.4 * _waveform(0.0, 3.0)], axis=1)
    a, b = _train(rng, 30.0), _train(rng, 30.0)
    # different waveforms: never merged
    peaks, labels = _peaks([a, b])
    assert len(np.unique(merge_over_split_units(_templates([shape, other]), peaks, labels, 0.3, int(N_SAMPLES)))) == 2
    # identical waveforms but two independent neurons: their trains overlap, the refractory test refuses
    assert not respects_refractory_period(a, b, 45, int(N_SAMPLES))
    assert len(np.unique(merge_over_split_units(_templates([shape, shape]), peaks, labels, 0.3, int(N_SAMPLES)))) == 2


def test_zero_threshold_switches_merging_off_and_labels_stay_dense():
    rng = np.random.default_rng(2)
    train = _train(rng, 10.0)
    shape = np.stack([_waveform(0.0)] * 4, axis=1)
    peaks, labels = _peaks([train[::2], train[1::2]])
    labels[:5] = -1
    assert np.array_equal(merge_over_split_units(_templates([shape, shape]), peaks, labels, 0.0, int(N_SAMPLES)), labels)
    merged = merge_over_split_units(_templates([shape, shape]), peaks, labels, 0.3, int(N_SAMPLES))
    assert set(np.unique(merged)) == {-1, 0}


def test_a_unit_cut_in_time_by_drift_is_merged_despite_a_changed_waveform():
    rng = np.random.default_rng(3)
    before = np.stack([_waveform(0.0), 0.5 * _waveform(0.0), 0.2 * _waveform(0.0), 0.1 * _waveform(0.0)], axis=1)
    after = np.stack([0.4 * _waveform(0.0), 0.7 * _waveform(0.0), 0.5 * _waveform(0.0), 0.2 * _waveform(0.0)], axis=1)
    difference = template_difference(before, after, 6)
    assert 0.3 < difference < 0.5  # too different for the plain threshold
    train = _train(rng, 15.0)
    moved = train >= N_SAMPLES / 2
    peaks, labels = _peaks([train[~moved], train[moved]])
    assert len(np.unique(merge_over_split_units(_templates([before, after]), peaks, labels, 0.3, int(N_SAMPLES)))) == 1
    # the same two waveforms firing side by side all along are two units
    half = rng.random(len(train)) < 0.5
    peaks, labels = _peaks([train[half], train[~half]])
    assert len(np.unique(merge_over_split_units(_templates([before, after]), peaks, labels, 0.3, int(N_SAMPLES)))) == 2


def test_coincidences_inside_the_detectors_dead_time_are_left_out_of_the_refractory_test():
    """Two units 1000 and 470 spikes strong, as on a tetrode, where the detector's 1 ms dead time
    (30 samples) removed every closer coincidence: 4 coincidences at 1.33 ms are half of what two
    independent units give beyond the dead time (7.8), so they are two neurons. Counted against
    the whole 1.5 ms window (23.5 expected) they looked refractory."""
    a = np.arange(1000) * 1800 + 100
    b = np.concatenate([a[:4] + 40, a[4:470] + 900])
    dead, window = 30, 45
    assert cross_coincidences(a, b, window, dead) == cross_coincidences(a, b, window) == 4
    assert respects_refractory_period(a, b, window, int(N_SAMPLES))  # the whole-window test: one neuron
    assert not respects_refractory_period(a, b, window, int(N_SAMPLES), dead)
    assert respects_refractory_period(a, a[:470] + 900, window, int(N_SAMPLES), dead)  # no coincidence: one neuron


def test_second_pass_units_join_the_first_pass_unit_that_explains_them_and_faint_ones_are_dropped():
    shape = _waveform(0.0)
    other = np.stack([0.2 * shape, 0.2 * shape, shape, shape], axis=1) * 8.0  # its own channels
    first = np.stack([shape, shape, 0.2 * shape, 0.2 * shape], axis=1) * 8.0
    templates = _templates([
        first,                                             # 0: first pass
        0.8 * first + 0.3 * np.roll(first, 2, axis=0),     # 1: second pass, a piece of unit 0
        np.stack([-_waveform(0.0, 2.0)] * 2 + [0.2 * shape] * 2, axis=1) * 8.0,  # 2: second pass, its own shape
        other * 0.3,                                       # 3: second pass, faint (peak 2.4 noise levels)
    ])
    labels = np.repeat([0, 1, 2, 3, -1], 12)
    out, own = fold_fragment_units(templates, labels, np.ones(4), first_small_label=1)
    np.testing.assert_array_equal(out, np.repeat([0, 0, 2, -1, -1], 12))
    # Nothing changes when the second pass formed no unit.
    np.testing.assert_array_equal(fold_fragment_units(templates, labels, np.ones(4), first_small_label=4)[0], labels)


def test_curation_folds_fragments_then_merges_over_split_units():
    rng = np.random.default_rng(4)
    train = _train(rng, 5.0)
    halves = train[::2], train[1::2]  # one neuron cut in two by HDBSCAN
    piece = _train(rng, 0.4)  # a second-pass unit
    peaks, labels = _peaks([*halves, piece])
    one = np.stack([_waveform(0.0)] * 4, axis=1) * 8.0
    templates = _templates([one, one * 0.95, one * 0.9])
    out = curate_units(templates, peaks, labels, np.ones(4), first_small_label=2, max_template_diff=0.3,
                       total_samples=int(N_SAMPLES), dead_time_ms=1.0)
    assert set(out) == {0}  # the halves merged, the piece joined them


def _mean_of_noisy_spikes(rng, shape: np.ndarray, count: int) -> np.ndarray:
    """The mean of ``count`` spikes of ``shape`` in unit Gaussian noise: a template as a sorter estimates it."""
    return shape + rng.normal(0.0, 1.0, size=(count, *shape.shape)).mean(axis=0)


def test_the_noise_of_few_spikes_is_taken_off_the_template_difference():
    # A unit 2 noise levels deep on its main channel, cut by the clustering into a large unit and a piece of 20
    # spikes: their two mean templates differ by noise alone more than the 0.3 threshold, but not once the noise of
    # their spike counts is discounted; two different units estimated from as many spikes stay different.
    rng = np.random.default_rng(4)
    train = _train(rng, 15.0)
    piece = np.zeros(len(train), bool)
    piece[rng.choice(len(train), size=20, replace=False)] = True
    n_large = int((~piece).sum())

    def unit(gains):
        return 2.0 * np.stack([g * _waveform(0.0, 3.0) for g in gains], axis=1)

    shape, other = unit([1.0, 0.6, 0.3, 0.15]), unit([0.15, 0.3, 0.6, 1.0])
    large, small = _mean_of_noisy_spikes(rng, shape, n_large), _mean_of_noisy_spikes(rng, shape, 20)
    support = np.ones(4)
    assert template_difference(large, small, 6) > 0.3
    assert template_difference(large, small, 6, difference_noise_variance(np.ones(4), support, support, n_large, 20)) < 0.2
    a, b = _mean_of_noisy_spikes(rng, shape, n_large), _mean_of_noisy_spikes(rng, other, n_large)
    far_apart = template_difference(a, b, 6, difference_noise_variance(np.ones(4), support, support, n_large, n_large))
    assert far_apart == template_difference(a, b, 6) > 0.4  # far above the noise: nothing is taken off
    # In the merge: the piece joins its unit when the noise levels are given, not without them.
    peaks, labels = _peaks([train[~piece], train[piece]])
    templates = _templates([large, small])
    assert len(np.unique(merge_over_split_units(templates, peaks, labels, 0.3, int(N_SAMPLES)))) == 2
    merged = merge_over_split_units(templates, peaks, labels, 0.3, int(N_SAMPLES), noise_levels=np.ones(4))
    assert len(np.unique(merged)) == 1


def test_no_chain_of_merges_joins_two_neurons_that_fire_together():
    # Two neurons at low rates (the refractory test has no power) whose templates differ by more than the
    # threshold, and a cluster of spikes between them (a mix, or a piece of either) close to both. Merging by the
    # running mean joined the piece to one neuron, and that mean then came within the threshold of the other.
    rng = np.random.default_rng(5)
    a_shape = np.stack([_waveform(0.0), 0.6 * _waveform(0.0), 0.3 * _waveform(0.0), 0.1 * _waveform(0.0)], axis=1)
    b_shape = np.stack([0.2 * _waveform(0.0), 0.6 * _waveform(0.0), 0.9 * _waveform(0.0), 0.3 * _waveform(0.0)], axis=1)
    between = 0.5 * (a_shape + b_shape)
    assert template_difference(a_shape, b_shape, 6) > 0.3 > template_difference(a_shape, between, 6)
    a, b, piece = _train(rng, 1.0), _train(rng, 1.0), _train(rng, 2.0)
    peaks, labels = _peaks([a, piece, b])
    merged = merge_over_split_units(_templates([a_shape, between, b_shape]), peaks, labels, 0.3, int(N_SAMPLES))
    assert merged[labels == 0][0] != merged[labels == 2][0]  # the two neurons stay apart
    assert len(np.unique(merged)) == 2  # the piece joins one of them
    # The same three clusters firing one after the other (a unit drifting from one shape to the other) are one unit.
    t = np.sort(np.concatenate([a, piece, b]))
    thirds = np.split(t, [len(t) // 3, 2 * len(t) // 3])
    peaks, labels = _peaks(thirds)
    assert len(np.unique(merge_over_split_units(_templates([a_shape, between, b_shape]), peaks, labels, 0.3,
                                                int(N_SAMPLES)))) == 1


def test_templates_after_the_fold_are_the_count_weighted_means_of_the_same_spikes():
    # The merge discounts the noise of each unit's spike count, so a unit that took in fragments must carry the
    # template of all its spikes, not that of the first pass's share alone.
    shape = np.stack([_waveform(0.0)] * 4, axis=1)
    templates = _templates([shape * 8.0, shape * 4.0, shape * 6.0])
    templates = templates.to_dense().to_sparse(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1]], bool))
    labels = np.repeat([0, 1, 2, -1], [30, 10, 20, 5])
    folded = np.repeat([0, 0, -1, -1], [30, 10, 20, 5])  # unit 1 a fragment of unit 0, unit 2 dropped as faint
    out = templates_after_fold(templates, labels, folded)
    np.testing.assert_array_equal(out.unit_ids, [0])
    np.testing.assert_array_equal(out.sparsity.mask, [[True, True, True, False]])
    dense = out.get_dense_templates()[0]
    np.testing.assert_allclose(dense[:, 0], shape[:, 0] * 8.0 * 30 / 40, rtol=1e-6)  # the fragment is zero off its channels
    np.testing.assert_allclose(dense[:, 1], shape[:, 1] * (8.0 * 30 + 4.0 * 10) / 40, rtol=1e-6)
    np.testing.assert_allclose(dense[:, 2], shape[:, 2] * 4.0 * 10 / 40, rtol=1e-6)
    assert templates_after_fold(templates, labels, labels) is templates  # nothing folded, nothing to redo


def test_a_template_made_of_two_others_is_explained_and_a_shape_of_its_own_is_not():
    a = np.stack([_waveform(0.0), 0.5 * _waveform(0.0), 0.2 * _waveform(0.0), 0.1 * _waveform(0.0)], axis=1)
    b = np.stack([0.1 * _waveform(0.0), 0.3 * _waveform(0.0), 0.8 * _waveform(0.0), _waveform(0.0)], axis=1)
    collision = 0.9 * a + np.roll(b, 5, axis=0)  # b's spike 5 samples after a's
    assert unexplained_energy(collision, [a, b], max_lag=6, noise_energy=0.0) < 1e-3  # the roll's edges are left
    assert unexplained_energy(collision, [a, b], max_lag=2, noise_energy=0.0) > 0.05  # the lag is out of reach
    assert unexplained_energy(0.7 * a, [a, b], max_lag=0, noise_energy=0.0) < 1e-9  # a piece of one unit
    narrow = np.stack([-_waveform(0.0, 2.0)] * 2 + [0.3 * _waveform(0.0, 2.0)] * 2, axis=1)
    assert unexplained_energy(narrow, [a, b], max_lag=6, noise_energy=0.0) > 0.2
    # What the noise of the unit's few spikes leaves is not counted as unexplained.
    left = unexplained_energy(narrow, [a, b], max_lag=6, noise_energy=0.0)
    energy = float((narrow ** 2).sum())
    assert unexplained_energy(narrow, [a, b], 6, noise_energy=left * energy) == 0.0


def test_a_slow_neuron_of_its_own_shape_is_kept_apart_and_out_of_the_merge():
    # A second-pass unit 12 noise levels deep whose template is within FRAGMENT_MAX_DIFF of its neighbour's but not
    # a piece, a mixture or a collision of the units around it: a slow-firing neuron, which folding would lose.
    shape = _waveform(0.0)
    neighbour = np.stack([shape, shape, 0.3 * shape, 0.1 * shape], axis=1) * 12.0
    slow = np.stack([g * _waveform(0.0, 3.0) for g in (1.0, 0.4, 0.6, 0.1)], axis=1) * 12.0  # narrower, other channels
    templates = _templates([neighbour, slow])
    assert template_difference(slow, neighbour, 6) < 0.55
    labels = np.repeat([0, 1], [300, 20])
    out, own = fold_fragment_units(templates, labels, np.ones(4), first_small_label=1)
    assert own == [1]
    np.testing.assert_array_equal(out, labels)
    # The same unit at 6 noise levels cannot be told from a noisy piece: it joins its neighbour.
    faint = _templates([neighbour / 2, slow / 2])
    out, own = fold_fragment_units(faint, labels, np.ones(4), first_small_label=1)
    assert own == [] and set(out) == {0}
    # Kept apart, the merge leaves it alone even where its template is within the merge's threshold.
    rng = np.random.default_rng(3)
    peaks, train_labels = _peaks([_train(rng, 5.0), _train(rng, 0.3)])
    assert len(np.unique(merge_over_split_units(templates, peaks, train_labels, 0.6, int(N_SAMPLES)))) == 1
    kept = merge_over_split_units(templates, peaks, train_labels, 0.6, int(N_SAMPLES), keep_apart=[1])
    assert len(np.unique(kept)) == 2
