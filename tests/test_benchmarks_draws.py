"""benchmarks/draws.py and benchmarks/_common.py: the draws are what they say, the scoring scores."""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))  # the scripts import each other by name

import _common  # noqa: E402
import draws  # noqa: E402


def test_splits_keep_test_seeds_apart_and_cover_every_kind():
    draws.check_splits()
    assert draws.REFERENCE in draws.DEV and set(draws.QUICK) <= {d.name for d in draws.DEV}
    reference = draws.REFERENCE
    assert (reference.seed, reference.num_units, reference.channels, reference.duration,
            reference.sampling_frequency) == (42, 20, 32, 60.0, 30000.0)


def test_gt_draw_has_the_probe_units_rates_and_sampling_rate_asked_for():
    draw = draws.Draw("t", "gt", seed=7, num_units=5, duration=20.0, sampling_frequency=20000.0, probe=("tetrode",),
                      firing_rates=(2.0, 10.0))
    recording, gt = draws.generate_gt(draw)
    assert recording.get_num_channels() == 4 and recording.get_sampling_frequency() == 20000.0
    assert len(gt.unit_ids) == 5 and recording.get_total_duration() == 20.0
    rates = gt.count_num_spikes_per_unit(outputs="array") / 20.0
    assert np.all(rates > 1.0) and np.all(rates < 13.0)  # Poisson counts around rates drawn in 2-10 Hz


@pytest.mark.skipif(not (draws.TEMPLATES / draws.WAVEFORM_FILES["np3a"]).exists(),
                    reason=f"the real waveforms are not at {draws.TEMPLATES} (shared/ beside the clone, or DEEPSPIKESORT_SHARED)")
def test_hybrid_draw_injects_real_waveforms_at_their_trough():
    draw = replace(next(d for d in draws.DEV if d.kind == "hybrid"), num_units=4, duration=5.0,
                   sampling_frequency=25000.0)
    recording, gt = draws.generate_hybrid(draw)
    templates = np.asarray(recording._kwargs["templates"])
    nbefore = recording._kwargs["nbefore"]
    assert recording.get_num_channels() == 32 and recording.get_sampling_frequency() == 25000.0
    assert templates.shape[:2] == (4, nbefore + int(draws.HYBRID_MS_AFTER * 25))
    troughs = templates.min(axis=2).argmin(axis=1)
    assert np.all(np.abs(troughs - nbefore) <= 1)  # aligned, so ground-truth times are the troughs
    assert np.all(-templates.min(axis=(1, 2)) > 20.0)  # real amplitudes (uV), scaled by 0.3-1.0


def test_neuropixels_slice_and_columns_probes():
    assert draws.make_probe(("neuropixels", 64, 100)).get_contact_count() == 64
    probe = draws.make_probe(("columns", 3, 48))
    assert probe.get_contact_count() == 48 and len(np.unique(probe.contact_positions[:, 0])) == 3


def test_ground_truth_summary_and_the_perfect_clustering_ceiling():
    from spikeinterface.core import generate_ground_truth_recording

    _, gt = generate_ground_truth_recording(durations=[10.0], num_units=4, seed=0)
    summary = _common.ground_truth_summary(gt=gt, sorting=gt)
    assert summary["accuracy"] == 1.0 and summary["well_detected"] == 4
    assert summary["false_positive"] == 0 and summary["redundant"] == 0
    spikes = gt.to_spike_vector()
    # Every true spike detected twice (1 and 3 samples late) plus a peak far from any spike.
    peaks = np.zeros(2 * len(spikes) + 1, dtype=[("sample_index", "int64")])
    peaks["sample_index"][:-1] = np.concatenate([spikes["sample_index"] + 1, spikes["sample_index"] + 3])
    peaks["sample_index"][-1] = spikes["sample_index"].max() + 10_000
    order = np.argsort(peaks["sample_index"], kind="stable")
    peaks = peaks[order]
    labels = _common.label_peaks_with_truth(peaks, gt, max_lag=12)
    # One peak per true spike (a spike that no peak is closest to, in a near-coincidence, gets none).
    assert 0.99 * len(spikes) <= (labels >= 0).sum() <= len(spikes) and labels[-1] == -1
    kept = np.sort(peaks["sample_index"][labels >= 0])
    assert np.mean(np.isin(kept - 1, spikes["sample_index"])) > 0.99  # the closest one
    sorting = _common.peaks_sorting(peaks, labels, gt.sampling_frequency)
    assert _common.ground_truth_summary(gt=gt, sorting=sorting)["accuracy"] == pytest.approx(1.0, abs=0.01)
