"""Hyper-parameter search with Optuna.

Each study maximises a validation score; the seeded TPE sampler makes a run
reproducible. The default storage is a SQLite file in the output folder, so an
interrupted run resumes with the trials it has; an RDB URL (``--storage``) lets several
machines work on one study, each stopping once the study holds the trial budget.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import optuna
import pandas as pd
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from .networks import trunk_of
from .normalisation import NORMALISATIONS

logger = logging.getLogger(__name__)

SEARCH_NORMALISATION = "search"  # let the study choose the normalisation too

DEFAULT_PARAMS = {
    "ffn": {"learning_rate": 3e-3, "dropout": 0.1, "hidden": 64},
    "cnn": {"learning_rate": 3e-3, "dropout": 0.1, "hidden": 32, "width": 8},
    "lstm": {"learning_rate": 5e-3, "dropout": 0.1, "hidden": 32},
}


def suggest_params(trial: optuna.Trial, model_name: str, normalisation: str) -> dict:
    """The hyper-parameters of one trial; small networks, as the files hold a few hundred rows."""
    trunk = trunk_of(model_name)
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
    }
    if trunk == "ffn":
        params["hidden"] = trial.suggest_categorical("hidden", [32, 64, 128])
    elif trunk == "cnn":
        params["hidden"] = trial.suggest_categorical("hidden", [16, 32])
        params["width"] = trial.suggest_categorical("width", [8, 16])
    else:
        params["hidden"] = trial.suggest_categorical("hidden", [16, 32, 64])
    if normalisation == SEARCH_NORMALISATION:
        params["normalisation"] = trial.suggest_categorical("normalisation", list(NORMALISATIONS))
    else:
        params["normalisation"] = normalisation
    return params


def first_trial_params(model_name: str, normalisation: str) -> dict:
    """A sensible configuration tried first, so that even a budget of one trial is meaningful."""
    params = dict(DEFAULT_PARAMS[trunk_of(model_name)])
    if normalisation == SEARCH_NORMALISATION:
        params["normalisation"] = "zscore"
    return params


def default_storage(output: str | Path) -> str:
    return f"sqlite:///{Path(output).resolve() / 'optuna.db'}"


def run_study(
    name: str,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    storage: str,
    seed: int,
    first_params: dict,
) -> optuna.Study:
    """Open (or resume) study ``name`` and run trials until it holds ``n_trials`` complete ones."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, n_trials // 2))
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, direction="maximize", load_if_exists=True)
    if not study.trials:
        study.enqueue_trial(first_params)
    remaining = n_trials - len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, callbacks=[MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,))])
    else:
        logger.info("study %s already holds %d complete trials; nothing to add", name, n_trials)
    return study


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """Every trial: its number, state, validation objective, parameters and recorded scores."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row = {"trial": trial.number, "state": trial.state.name, "validation_objective": trial.value}
        row.update(trial.params)
        row.update(trial.user_attrs)
        rows.append(row)
    return pd.DataFrame(rows)
