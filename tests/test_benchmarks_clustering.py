"""benchmarks/clustering.py on a short recording: the same peaks for every method, the ceiling on top."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))  # the scripts import each other by name

import _common  # noqa: E402
import clustering  # noqa: E402


def test_peaks_snippets_and_the_baselines(tmp_path, monkeypatch):
    from spikeinterface.core import generate_ground_truth_recording

    # In this process: worker processes would each compile SpikeInterface's numba kernels again.
    monkeypatch.setattr(clustering, "JOB_KWARGS", dict(n_jobs=1, progress_bar=False))
    recording, gt = generate_ground_truth_recording(durations=[6.0], sampling_frequency=30000.0, num_channels=8,
                                                    num_units=4, seed=3)
    preprocessed = clustering.preprocess(recording, tmp_path / "preprocessed")
    assert (tmp_path / "preprocessed" / "binary.json").exists()
    noise_levels = np.ones(8, dtype="float32")  # whitened traces: unit noise
    peaks = clustering.detect(preprocessed, noise_levels)
    assert len(peaks) > 50
    snippets = clustering.snippets_nearest_channels(preprocessed, peaks[:10])
    assert snippets.shape == (10, (30 + 45) * 8)
    # The window on the peak's own channel (nearest first) holds its trough at 1 ms.
    first = snippets.reshape(10, 75, 8)[:, :, 0]
    assert np.all(first[:, 30] == preprocessed.get_traces()[peaks["sample_index"][:10], peaks["channel_index"][:10]])
    scores = {}
    for method in ["ceiling", "pca+position+hdbscan"]:
        labels = clustering.cluster(method, recording=preprocessed, peaks=peaks, noise_levels=noise_levels, gt=gt)
        assert labels.shape == (len(peaks),)
        scores[method] = _common.ground_truth_summary(gt=gt, sorting=_common.peaks_sorting(peaks, labels, 30000.0))
    assert scores["ceiling"]["accuracy"] >= scores["pca+position+hdbscan"]["accuracy"]
    assert scores["ceiling"]["redundant"] == 0  # one label per true unit


def test_seeds_run_this_packages_methods_again_and_are_averaged():
    assert clustering.with_seeds(["deepcluster", "deepcluster-pca", "ceiling"], 3) == [
        "deepcluster", "deepcluster@1", "deepcluster@2", "deepcluster-pca", "deepcluster-pca@1", "deepcluster-pca@2",
        "ceiling"]
    rows = {"deepcluster": {"accuracy": 0.6, "well_detected": 3}, "deepcluster@1": {"accuracy": 0.7, "well_detected": 4},
            "ceiling": {"accuracy": 0.9, "well_detected": 5}}
    assert clustering.seed_mean(rows, "deepcluster", 2) == {"accuracy": 0.65, "well_detected": 3.5}
    assert clustering.seed_mean(rows, "deepcluster", 3) is None  # seed 2 has not run
    assert clustering.seed_mean(rows, "ceiling", 2) == {"accuracy": 0.9, "well_detected": 5}  # not seeded
    summary = clustering.summarise({"a": {"info": {"units": 6}, "rows": rows}}, ["deepcluster", "ceiling"], seeds=2)
    assert summary["deepcluster"] == {"draws": 1, "median_accuracy": 0.65, "well_detected": 3.5, "gt_units": 6}
