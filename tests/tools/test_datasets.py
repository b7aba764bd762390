"""Generated ground-truth recordings (demo, tests, benchmarks) and the locust tetrode reader."""

import json

import numpy as np
import probeinterface as pi
import spikeinterface.core as sic

from spikeinterface_deepsort.tools.datasets import ground_truth_recording, locust_tetrode, make_serializable


def test_generated_recordings_are_made_serialisable(tmp_path):
    recording, gt = sic.generate_ground_truth_recording(durations=[2.0], num_channels=4, seed=0)
    assert not recording.check_serializability("json")  # SpikeInterface's own: spike trains in memory
    lazy, saved = make_serializable(recording, gt, tmp_path / "gt")
    assert lazy.check_serializability("json")
    assert (lazy.get_traces(end_frame=500) == recording.get_traces(end_frame=500)).all()
    np.testing.assert_allclose(lazy.get_channel_locations(), recording.get_channel_locations())
    # The round trip that run_sorter makes: to JSON and back, the same traces.
    lazy.dump_to_json(tmp_path / "recording.json")
    back = sic.load(tmp_path / "recording.json")
    np.testing.assert_array_equal(back.get_traces(start_frame=1000, end_frame=3000),
                                  recording.get_traces(start_frame=1000, end_frame=3000))
    assert list(saved.unit_ids) == list(gt.unit_ids)


def test_firing_rates_are_spread_over_the_range_asked():
    duration = 60.0
    recording, sorting = ground_truth_recording(4, 5, duration, seed=3, firing_rates=(5.0, 40.0))
    assert recording.get_num_channels() == 4 and recording.get_total_duration() == duration
    rates = np.array([len(sorting.get_unit_spike_train(u)) / duration for u in sorting.unit_ids])
    np.testing.assert_allclose(rates, np.linspace(5.0, 40.0, 5), rtol=0.25)
    assert np.all(np.diff(rates) > 0)
    _, default = ground_truth_recording(4, 5, duration, seed=3)
    np.testing.assert_allclose([len(default.get_unit_spike_train(u)) / duration for u in default.unit_ids], 15.0,
                               rtol=0.25)
    for unit in sorting.unit_ids:  # SpikeInterface's 4 ms refractory period
        assert np.diff(sorting.get_unit_spike_train(unit)).min() >= 0.004 * recording.get_sampling_frequency() - 1


def test_the_same_seed_gives_the_same_case_and_a_folder_makes_it_serialisable(tmp_path):
    recording, sorting = ground_truth_recording(4, 3, 2.0, seed=9)
    lazy, saved = ground_truth_recording(4, 3, 2.0, seed=9, folder=tmp_path / "gt")
    assert lazy.check_serializability("json") and (tmp_path / "gt").is_dir()
    np.testing.assert_array_equal(lazy.get_traces(end_frame=2000), recording.get_traces(end_frame=2000))
    for unit in sorting.unit_ids:
        np.testing.assert_array_equal(saved.get_unit_spike_train(unit), sorting.get_unit_spike_train(unit))


def test_locust_tetrode_concatenates_the_trials_on_a_nominal_tetrode(tmp_path):
    rng = np.random.default_rng(0)
    trials = [rng.integers(-200, 200, size=(n, 4)).astype("int16") for n in (15000, 7500)]
    for i, trial in enumerate(trials, start=1):
        trial.tofile(tmp_path / f"locust_trial_{i:02d}.raw")
    (tmp_path / "info.json").write_text(json.dumps({"sample_rate": 15000.0, "dtype": "int16", "shape": [0, 4]}))
    recording = locust_tetrode(tmp_path)
    assert recording.get_num_segments() == 1 and recording.get_sampling_frequency() == 15000.0
    np.testing.assert_array_equal(recording.get_traces(), np.concatenate(trials))
    np.testing.assert_allclose(recording.get_channel_locations(), pi.generate_tetrode().contact_positions)
