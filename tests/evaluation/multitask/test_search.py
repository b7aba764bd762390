"""Seeded Optuna studies with a trial budget, resumable from their storage."""

import math

import optuna
import pytest

from spikeinterface_deepsort.evaluation.multitask.search import first_trial_params, run_study, suggest_params, trials_table


def _objective(trial):
    params = suggest_params(trial, "cnn", "zscore")
    trial.set_user_attr("validation_A2_accuracy_mean", 0.5)
    return -abs(math.log10(params["learning_rate"]) + 2.5) - params["dropout"]


def _study(tmp_path, name="db", n_trials=4, seed=0):
    return run_study("cnn-A2", _objective, n_trials, f"sqlite:///{tmp_path / name}.db", seed, first_trial_params("cnn", "zscore"))


def test_budget_first_trial_and_table(tmp_path):
    study = _study(tmp_path)
    assert len(study.trials) == 4
    assert study.trials[0].params == first_trial_params("cnn", "zscore")
    table = trials_table(study)
    assert list(table["trial"]) == [0, 1, 2, 3]
    assert {"validation_objective", "learning_rate", "width", "validation_A2_accuracy_mean"} <= set(table.columns)


def test_seeded(tmp_path):
    first, second = _study(tmp_path, "a"), _study(tmp_path, "b")
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    third = _study(tmp_path, "c", seed=1)
    assert [t.params for t in first.trials[1:]] != [t.params for t in third.trials[1:]]


def test_resumes_up_to_the_budget(tmp_path):
    _study(tmp_path, n_trials=2)
    assert len(_study(tmp_path, n_trials=2).trials) == 2
    assert len(_study(tmp_path, n_trials=3).trials) == 3


@pytest.mark.parametrize("normalisation, searched", [("peak-absolute", False), ("search", True)])
def test_normalisation_fixed_or_searched(normalisation, searched):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = suggest_params(trial, "mtl-lstm", normalisation)
    assert ("normalisation" in trial.params) is searched
    assert params["normalisation"] == normalisation or searched
    assert set(params) == {"learning_rate", "dropout", "hidden", "normalisation"}
