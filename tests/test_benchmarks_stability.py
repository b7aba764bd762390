"""benchmarks/stability.py: the perturbed recording and the table."""

import sys
from pathlib import Path

import numpy as np
import spikeinterface.core as sic

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))  # the scripts import each other by name

import stability  # noqa: E402


def test_the_perturbation_is_a_millionth_of_the_noise_and_keeps_the_probe(tmp_path):
    recording, _ = sic.generate_ground_truth_recording(durations=[2.0], num_channels=8, num_units=3, seed=1)
    recording = recording.save(folder=tmp_path / "rec", n_jobs=1, progress_bar=False)
    perturbed = sic.load(stability.perturbed_recording(recording, tmp_path / "noisy", noise_seed=1))
    difference = perturbed.get_traces() - recording.get_traces()
    noise = sic.get_noise_levels(recording, return_in_uV=False, random_slices_kwargs=dict(seed=0))
    assert np.any(difference != 0)
    assert np.all(np.abs(difference).max(axis=0) < 10 * stability.NOISE_FRACTION * noise)
    np.testing.assert_array_equal(perturbed.get_channel_locations(), recording.get_channel_locations())
    again = sic.load(stability.perturbed_recording(recording, tmp_path / "noisy", noise_seed=1))
    np.testing.assert_array_equal(again.get_traces(), perturbed.get_traces())  # written once, read back


def test_table_has_every_run_the_spread_and_the_identity():
    runs = {label: {"accuracy": 0.9 - 0.01 * i} for i, label in enumerate(stability.RUNS)}
    text = stability.to_markdown({"dev-x": {"runs": runs, "spread": 0.04, "identical": True}}, "stability.py")
    assert "| dev-x | 0.9 | 0.89 |" in text and "| 0.04 | yes |" in text
