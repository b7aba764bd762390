"""The same seed gives the same answer: the sorter across runs and n_jobs, phase 1's classify across runs.

The multi-task benchmark's same-seed identity is asserted in
test_multitask_runner.py::test_same_seed_same_results.
"""

import json

import numpy as np
import pandas as pd
import spikeinterface.core as sic
import spikeinterface.sorters as ss

from spikeinterface_deepsort.evaluation.classification import classify_units
from spikeinterface_deepsort.tools.datasets import ground_truth_recording


def _assert_same_sorting(a, b):
    assert list(a.unit_ids) == list(b.unit_ids)
    for segment in range(a.get_num_segments()):
        for unit in a.unit_ids:
            np.testing.assert_array_equal(a.get_unit_spike_train(unit, segment_index=segment),
                                          b.get_unit_spike_train(unit, segment_index=segment))


def test_sorter_same_seed_same_spike_trains_across_runs_and_n_jobs(tmp_path):
    recording, _ = sic.generate_ground_truth_recording(durations=[15.0], sampling_frequency=30000.0, num_channels=6,
                                                       num_units=4, seed=21)
    recording = recording.save(folder=tmp_path / "rec", n_jobs=1, progress_bar=False)
    params = dict(max_rounds=2, steps_per_round=20, seed=7)
    runs = {}
    for name, n_jobs in (("first", 1), ("second", 1), ("two_jobs", 2)):
        runs[name] = ss.run_sorter("deepspikesort", recording, folder=tmp_path / name,
                                   job_kwargs=dict(n_jobs=n_jobs, progress_bar=False), **params)
    assert runs["first"].to_spike_vector().size > 100
    for other in ("second", "two_jobs"):
        _assert_same_sorting(runs["first"], runs[other])
        for name in ("peaks.npy", "peak_labels.npy"):  # the intermediate results too, not only the final trains
            np.testing.assert_array_equal(np.load(tmp_path / "first" / "sorter_output" / name),
                                          np.load(tmp_path / other / "sorter_output" / name))


SMALL = dict(min_spikes=300, max_spikes=900, units=2, spikes_per_unit=150, noise=100, epochs=2, seed=3,
             device="cpu", progress=False)


def test_classify_same_seed_same_predictions(tmp_path):
    recording, reference = ground_truth_recording(32, 10, 20.0, seed=1, firing_rates=(5.0, 40.0))
    first = classify_units(recording, reference, tmp_path / "a", job_kwargs=dict(n_jobs=1), **SMALL)
    second = classify_units(recording, reference, tmp_path / "b", job_kwargs=dict(n_jobs=2), **SMALL)
    a, b = (json.loads(result.paths["metrics"].read_text()) for result in (first, second))
    a.pop("seconds"), b.pop("seconds")  # wall time is the only thing allowed to differ
    assert a == b
    for name in ("confusion_matrix", "comparison", "training_log"):  # built from the test predictions, per spike
        tables = [pd.read_csv(result.paths[name]) for result in (first, second)]
        pd.testing.assert_frame_equal(*(table.drop(columns=["seconds"], errors="ignore") for table in tables))
