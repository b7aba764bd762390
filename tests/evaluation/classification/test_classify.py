"""Phase 1's supervised classification: accuracy on generated data, session folder, resume, bad input."""

import json

import numpy as np
import pandas as pd
import pytest
from spikeinterface.core import NumpySorting

from spikeinterface_deepsort.cli.main import main
from spikeinterface_deepsort.errors import DataFormatError, OutputFolderError, ParameterError, RecordingError
from spikeinterface_deepsort.evaluation.classification import classify_units
from spikeinterface_deepsort.tools.datasets import ground_truth_recording

SESSION_FILES = ["training_log.csv", "training_curves.png", "confusion_matrix.png", "confusion_matrix.csv",
                 "metrics.json", "comparison.csv", "checkpoint.pt"]


@pytest.fixture(scope="module")
def short_demo():
    """20 s: units with about 100 to 800 spikes."""
    return ground_truth_recording(32, 10, 20.0, seed=1, firing_rates=(5.0, 40.0))


# Two units with 300-900 spikes, 150 spikes each, 100 noise windows: a few seconds per epoch.
SMALL = dict(min_spikes=300, max_spikes=900, units=2, spikes_per_unit=150, noise=100, device="cpu", progress=False)


def test_demo_separates_three_units_with_at_least_98_percent_accuracy(tmp_path):
    """The issue's acceptance test: 3 units in [1000, 5000] of a generated 60 s, 32-channel recording."""
    code = main(["-q", "classify", "--demo", "--min-spikes", "1000", "--max-spikes", "5000", "--units", "3",
                 "--spikes-per-unit", "500", "--noise", "0", "--session", "sup", "--session-number", "0",
                 "--epochs", "10", "--device", "cpu", "--output", str(tmp_path)])
    assert code == 0
    session = tmp_path / "SUP_000"
    for name in SESSION_FILES:
        assert (session / name).is_file(), name
    metrics = json.loads((session / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.98
    assert metrics["balanced_accuracy"] >= 0.98 and metrics["macro_f1"] >= 0.98
    assert len(metrics["units"]) == 3 and metrics["seed"] == 0
    assert all(1000 <= n <= 5000 for n in metrics["reference_spike_counts"].values())
    assert set(metrics["per_class"]) == set(metrics["units"])
    assert all({"precision", "recall"} <= set(scores) for scores in metrics["per_class"].values())

    log = pd.read_csv(session / "training_log.csv")
    assert list(log.columns[:5]) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
    assert len(log) == metrics["epochs_run"] <= 10
    confusion = pd.read_csv(session / "confusion_matrix.csv", index_col=0)
    assert np.allclose(confusion.sum(axis=1), 1.0)
    comparison = pd.read_csv(session / "comparison.csv", index_col=0)
    assert {"accuracy", "recall", "precision"} <= set(comparison.columns)
    assert (comparison["accuracy"] >= 0.95).all()


def test_resume_continues_a_session_and_noise_is_a_class(tmp_path, short_demo):
    recording, reference = short_demo
    first = classify_units(recording, reference, tmp_path, epochs=1, **SMALL)
    assert first.metrics["samples_per_class"] == {**{str(u): 150 for u in first.units}, "noise": 100}
    assert list(pd.read_csv(first.paths["confusion_matrix"], index_col=0).columns)[-1] == "noise"

    resumed = classify_units(recording, reference, tmp_path, epochs=2, resume=True, **SMALL)
    assert resumed.units == first.units
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    assert resumed.history[0] == first.history[0]  # epoch 1 was not trained again
    assert len(pd.read_csv(resumed.paths["training_log"])) == 2

    with pytest.raises(OutputFolderError, match="other options"):
        classify_units(recording, reference, tmp_path, epochs=2, resume=True, **dict(SMALL, noise=50))


def test_existing_session_folder_is_refused(tmp_path, short_demo):
    recording, reference = short_demo
    (tmp_path / "ABC_007").mkdir()
    (tmp_path / "ABC_007" / "metrics.json").write_text("{}")
    with pytest.raises(OutputFolderError, match="ABC_007.*already exists.*--overwrite.*--resume"):
        classify_units(recording, reference, tmp_path, session="abc", session_number=7, **SMALL)


def test_too_few_units_in_range_is_refused(tmp_path, short_demo):
    recording, reference = short_demo
    with pytest.raises(DataFormatError, match="Ask for fewer units"):
        classify_units(recording, reference, tmp_path, **dict(SMALL, units=8))
    assert not (tmp_path / "SUP_000").exists()  # refused before anything was written


def test_reference_beyond_the_recording_is_refused(tmp_path, short_demo):
    recording, _ = short_demo
    samples = np.arange(1000, 40 * 30000, 600)  # 40 s of spikes for a 20 s recording
    reference = NumpySorting.from_samples_and_labels([samples], [samples % 2], 30000.0)
    with pytest.raises(RecordingError, match="outside the recording"):
        classify_units(recording, reference, tmp_path, **SMALL)


def test_mismatched_sampling_frequency_is_refused(tmp_path, short_demo):
    recording, _ = short_demo
    samples = np.arange(1000, 10 * 30000, 600)
    reference = NumpySorting.from_samples_and_labels([samples], [samples % 2], 32000.0)
    with pytest.raises(RecordingError, match="32000.0 Hz but the recording at 30000.0 Hz"):
        classify_units(recording, reference, tmp_path, **SMALL)


@pytest.mark.parametrize("options, fragment", [
    (dict(spikes_per_unit=400), "exceeds min_spikes"),
    (dict(max_spikes=100), "below min_spikes"),
    (dict(units=1), "units must be a whole number >= 2"),
    (dict(noise="lots"), "noise must be"),
    (dict(noise=5), "noise must be 0 \\(no noise class\\), at least 10"),
    (dict(spikes_per_unit=3), "spikes_per_unit must be at least 10"),
    (dict(overwrite=True, resume=True), "not both"),
])
def test_bad_options_are_refused(tmp_path, short_demo, options, fragment):
    recording, reference = short_demo
    with pytest.raises(ParameterError, match=fragment):
        classify_units(recording, reference, tmp_path, **dict(SMALL, **options))
