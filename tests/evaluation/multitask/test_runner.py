"""The whole benchmark on tiny files: reproducible, validation-only model choice, paired folds."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from spikeinterface_deepsort.errors import ParameterError
from spikeinterface_deepsort.evaluation.multitask.experiment import TrainingSettings
from spikeinterface_deepsort.evaluation.multitask.folds import stratified_folds
from spikeinterface_deepsort.evaluation.multitask.loader import WaveformDataset, load_datasets
from spikeinterface_deepsort.evaluation.multitask.runner import BenchmarkSettings, run_benchmark
from spikeinterface_deepsort.evaluation.multitask.synthetic import DatasetSpec, write_csv_datasets

TINY = (DatasetSpec("T1", {"a": 24, "b": 24}, 0.8), DatasetSpec("T2", {"a": 15, "b": 15, "c": 15}, 0.6))
SETTINGS = BenchmarkSettings(
    models=("ffn", "mtl-ffn"), n_folds=3, n_trials=2, seed=0, training=TrainingSettings(epochs=3, patience=2, batch_size=16, device="cpu")
)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_csv_datasets(folder, seed=0, specs=TINY)
    return load_datasets(folder, min_class_size=3)


def test_same_seed_same_results(datasets, tmp_path):
    first = run_benchmark(datasets, tmp_path / "a", SETTINGS, progress=False)
    second = run_benchmark(datasets, tmp_path / "b", SETTINGS, progress=False)
    pd.testing.assert_frame_equal(first, second)
    for name in ("folds.csv", "best.csv", "trials.csv"):
        a, b = (pd.read_csv(tmp_path / run / "ffn" / name) for run in ("a", "b"))
        timings = [c for c in a.columns if "seconds" in c]  # wall times differ, nothing else may
        pd.testing.assert_frame_equal(a.drop(columns=timings), b.drop(columns=timings))
    trials = pd.read_csv(tmp_path / "a" / "mtl-ffn" / "trials.csv")
    assert len(trials) == 2 and trials["validation_objective"].notna().all()


def test_choice_uses_validation_scores_only(datasets, tmp_path):
    """Changing the rows of test fold 0 changes that fold's test scores, never its training or validation.

    One trial, so the configuration is the same in both runs (the other folds train on
    fold 0's rows, so with more trials the choice may legitimately differ).
    """
    settings = replace(SETTINGS, n_trials=1)
    clean = run_benchmark(datasets, tmp_path / "clean", settings, progress=False)
    changed = []
    for data in datasets:
        test_rows = stratified_folds(data.labels, SETTINGS.n_folds, SETTINGS.seed)[0].test
        waveforms = data.waveforms.copy()
        waveforms[test_rows] = np.random.default_rng(1).normal(size=waveforms[test_rows].shape) * 100
        changed.append(WaveformDataset(data.name, waveforms, data.labels, data.classes))
    run_benchmark(changed, tmp_path / "changed", settings, progress=False)
    for model in SETTINGS.models:
        a = pd.read_csv(tmp_path / "clean" / model / "folds.csv").query("fold == 0")
        b = pd.read_csv(tmp_path / "changed" / model / "folds.csv").query("fold == 0")
        validation = [c for c in a.columns if c.startswith("validation_")]
        pd.testing.assert_frame_equal(a[validation].reset_index(drop=True), b[validation].reset_index(drop=True))
        assert not np.allclose(a["accuracy"], b["accuracy"])
    assert len(clean) == 4


def test_best_trial_has_the_highest_validation_objective(datasets, tmp_path):
    run_benchmark(datasets, tmp_path, SETTINGS, progress=False)
    trials = pd.read_csv(tmp_path / "ffn" / "trials.csv")
    best = pd.read_csv(tmp_path / "ffn" / "best.csv")
    for _, row in best.iterrows():
        mine = trials[trials["dataset"] == row["dataset"]]
        assert row["validation_objective"] == pytest.approx(mine["validation_objective"].max())


def test_multitask_needs_equal_waveform_lengths(datasets, tmp_path):
    short = WaveformDataset("S", datasets[0].waveforms[:, :20], datasets[0].labels, datasets[0].classes)
    with pytest.raises(ParameterError, match="same number of samples"):
        run_benchmark([datasets[1], short], tmp_path, SETTINGS, progress=False)
    with pytest.raises(ParameterError, match="task weights name unknown"):
        run_benchmark(datasets, tmp_path, BenchmarkSettings(training=TrainingSettings(task_weights={"A99": 2.0})), progress=False)


def test_rerun_resumes_the_study_and_retrains_the_chosen_trial_identically(datasets, tmp_path):
    first = run_benchmark(datasets, tmp_path, SETTINGS, progress=False)
    again = run_benchmark(datasets, tmp_path, SETTINGS, progress=False)  # no new trials: fold models are retrained
    pd.testing.assert_frame_equal(first, again)
    assert len(pd.read_csv(tmp_path / "ffn" / "trials.csv").query("dataset == 'T1'")) == SETTINGS.n_trials
