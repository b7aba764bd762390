"""The whole benchmark: search, then score each test fold once, for every model.

Single-task models get one study per file (each file its own best configuration);
a multi-task model gets one study over all files, its objective the mean over files of
the validation balanced accuracy. Every trial trains on every fold, so a configuration
is judged on the mean of its validation scores over folds; the chosen configuration's
fold models then score their test folds, once. All models use the same folds, so the
single-task and multi-task scores are paired fold by fold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from tqdm.auto import tqdm

from ...errors import ParameterError
from ...output_folders import check_writable_output, folder_kind, mark_folder
from ...learning.torch_utils import cpu_threads
from .evaluation import METRICS
from .experiment import FoldModel, TrainingSettings, score_test, train_fold
from .folds import FoldSplit, stratified_folds
from .loader import WaveformDataset
from .networks import MODEL_NAMES, is_multitask, trunk_of
from .normalisation import NORMALISATIONS
from .summary import write_summary
from .search import SEARCH_NORMALISATION, default_storage, first_trial_params, run_study, suggest_params, trials_table

logger = logging.getLogger(__name__)

OBJECTIVE_METRIC = "balanced_accuracy"  # robust to A21's 218/308 imbalance, comparable across files


@dataclass(frozen=True)
class BenchmarkSettings:
    models: tuple[str, ...] = MODEL_NAMES
    n_folds: int = 5
    n_trials: int = 3  # with 5 folds and six models this keeps the default run under 15 min on 2 cores
    seed: int = 0
    normalisation: str = "zscore"
    validation_fraction: float = 0.2
    storage: str | None = None
    threads: int = 1  # these networks are tiny: extra threads only add synchronisation (and fight other jobs)
    training: TrainingSettings = field(default_factory=TrainingSettings)


def _check(datasets: list[WaveformDataset], settings: BenchmarkSettings) -> None:
    unknown = [name for name in settings.models if name not in MODEL_NAMES]
    if unknown:
        raise ParameterError(f"Unknown model(s) {unknown}: use some of {', '.join(MODEL_NAMES)}.")
    if settings.normalisation not in (*NORMALISATIONS, SEARCH_NORMALISATION):
        raise ParameterError(f"normalisation must be one of {(*NORMALISATIONS, SEARCH_NORMALISATION)}, got {settings.normalisation!r}.")
    if settings.n_trials < 1:
        raise ParameterError(f"trials must be >= 1, got {settings.n_trials}.")
    names = {data.name for data in datasets}
    strangers = set(settings.training.task_weights) - names
    if strangers:
        raise ParameterError(f"task weights name unknown file(s) {sorted(strangers)}; the files are {sorted(names)}.")
    lengths = {data.name: data.n_samples for data in datasets}
    if any(is_multitask(name) for name in settings.models) and len(set(lengths.values())) > 1:
        raise ParameterError(f"multi-task models share one trunk, so every file needs the same number of samples; got {lengths}.")


def _fingerprint(group: list[WaveformDataset], settings: BenchmarkSettings) -> str:
    """Short hash of the data and settings, so that a study is only resumed by the same experiment."""
    digest = hashlib.sha1()
    fixed = {key: value for key, value in asdict(settings).items() if key not in ("models", "storage", "n_trials", "threads")}
    digest.update(json.dumps(fixed, sort_keys=True, default=str).encode())
    for data in group:
        digest.update(data.name.encode())
        digest.update(data.waveforms.tobytes())
        digest.update(data.labels.tobytes())
    return digest.hexdigest()[:10]


def _fold_seed(seed: int, fold: int) -> int:
    return seed * 1000 + fold


class GroupSearch:
    """The Optuna objective for one model on one group of files, keeping the best trial's fold models."""

    def __init__(self, model_name: str, group: list[WaveformDataset], splits: dict[str, list[FoldSplit]],
                 settings: BenchmarkSettings, bar: tqdm | None = None):
        self.model_name, self.group, self.splits, self.settings, self.bar = model_name, group, splits, settings, bar
        self.best_value, self.best_number, self.best_models = -math.inf, None, None

    def train_all_folds(self, params: dict) -> list[FoldModel]:
        return [
            train_fold(
                self.model_name, params, self.group, {data.name: self.splits[data.name][fold] for data in self.group},
                self.settings.training, _fold_seed(self.settings.seed, fold),
            )
            for fold in range(self.settings.n_folds)
        ]

    def objective(self, trial: optuna.Trial) -> float:
        params = suggest_params(trial, self.model_name, self.settings.normalisation)
        fold_models = self.train_all_folds(params)
        for data in self.group:
            for metric in METRICS:
                values = [fold_model.validation_scores[data.name][metric] for fold_model in fold_models]
                trial.set_user_attr(f"validation_{data.name}_{metric}_mean", float(np.mean(values)))
                trial.set_user_attr(f"validation_{data.name}_{metric}_std", float(np.std(values)))
        trial.set_user_attr("best_epoch_mean", float(np.mean([fold_model.best_epoch for fold_model in fold_models])))
        trial.set_user_attr("seconds", float(sum(fold_model.seconds for fold_model in fold_models)))
        value = float(np.mean([
            np.mean([fold_model.validation_scores[data.name][OBJECTIVE_METRIC] for data in self.group])
            for fold_model in fold_models
        ]))
        if value > self.best_value:
            self.best_value, self.best_number, self.best_models = value, trial.number, fold_models
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(validation=f"{value:.3f}")
        return value

    def fold_models_of(self, trial: optuna.trial.FrozenTrial) -> list[FoldModel]:
        """The chosen trial's fold models; retrained (same seeds) if another run or machine made that trial."""
        if trial.number == self.best_number:
            return self.best_models
        params = {"normalisation": self.settings.normalisation, **trial.params}
        return self.train_all_folds(params)


def _mean_and_std(fold_scores: pd.DataFrame) -> dict[str, float]:
    """Mean and (population) standard deviation over folds of every metric."""
    result = {}
    for metric in METRICS:
        result[f"{metric}_mean"] = float(fold_scores[metric].mean())
        result[f"{metric}_std"] = float(fold_scores[metric].std(ddof=0))
    return result


def _group_name(model_name: str, group: list[WaveformDataset]) -> str:
    return "all" if is_multitask(model_name) else group[0].name


def _score_test_folds(model_name: str, data: WaveformDataset, fold_models: list[FoldModel], splits, trial_number: int):
    """Score each test fold of one file once; return the fold rows and the per-class table."""
    fold_rows, tables = [], []
    for fold_model in fold_models:
        split = splits[data.name][fold_model.fold]
        scores, per_class = score_test(fold_model, data, split)
        fold_rows.append({
            "model": model_name, "dataset": data.name, "fold": fold_model.fold, "trial": trial_number,
            "n_train": split.train.size, "n_validation": split.validation.size, "n_test": split.test.size,
            "best_epoch": fold_model.best_epoch, "train_seconds": round(fold_model.seconds, 2), **scores,
            **{f"validation_{metric}": fold_model.validation_scores[data.name][metric] for metric in METRICS},
        })
        overall = pd.DataFrame([{"fold": fold_model.fold, "class": "all", "n_rows": split.test.size, **scores}])
        tables += [overall, per_class.rename(columns={"accuracy": "si_accuracy"}).assign(fold=fold_model.fold)]
    return fold_rows, pd.concat(tables, ignore_index=True)


def _benchmark_model(model_name: str, datasets, splits, settings: BenchmarkSettings, storage: str, output: Path, bar: tqdm):
    """Search and test one model; write its files; return its summary rows and its test-fold rows."""
    groups = [datasets] if is_multitask(model_name) else [[data] for data in datasets]
    trials, best_rows, fold_rows, per_dataset = [], [], [], {}
    for group in groups:
        group_name = _group_name(model_name, group)
        bar.set_description(f"{model_name} {group_name}")
        search = GroupSearch(model_name, group, splits, settings, bar)
        study = run_study(
            f"{model_name}-{group_name}-{_fingerprint(group, settings)}", search.objective, settings.n_trials,
            storage, settings.seed, first_trial_params(model_name, settings.normalisation),
        )
        trials.append(trials_table(study).assign(model=model_name, dataset=group_name))
        best = study.best_trial
        fold_models = search.fold_models_of(best)
        for data in group:
            rows, per_dataset[data.name] = _score_test_folds(model_name, data, fold_models, splits, best.number)
            fold_rows += rows
            best_rows.append({
                "model": model_name, "dataset": data.name, "trial": best.number, "validation_objective": best.value,
                "normalisation": settings.normalisation, **best.params, **_mean_and_std(pd.DataFrame(rows)),
            })
    _write_model_files(output / model_name, trials, best_rows, fold_rows, per_dataset)
    kind = "multi-task" if is_multitask(model_name) else "single-task"
    summary_rows = [
        {"model": model_name, "kind": kind, "trunk": trunk_of(model_name), "dataset": row["dataset"], "n_folds": settings.n_folds,
         **{key: value for key, value in row.items() if key.endswith(("_mean", "_std"))}}
        for row in best_rows
    ]
    return summary_rows, fold_rows


def _write_model_files(folder: Path, trials, best_rows, fold_rows, per_dataset) -> None:
    (folder / "per_dataset").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(best_rows).to_csv(folder / "best.csv", index=False)
    pd.DataFrame(fold_rows).to_csv(folder / "folds.csv", index=False)
    pd.concat(trials, ignore_index=True).to_csv(folder / "trials.csv", index=False)
    for name, table in per_dataset.items():
        columns = ["fold", "class", "n_rows", *METRICS, "si_accuracy", "recall", "precision"]
        table.reindex(columns=columns).to_csv(folder / "per_dataset" / f"{name}.csv", index=False)


RESULTS_KIND = "multitask-results"


def run_benchmark(datasets: list[WaveformDataset], output: str | Path, settings: BenchmarkSettings, progress: bool = True) -> pd.DataFrame:
    """Run every model of ``settings`` on ``datasets``; write the results under ``output``; return the summary."""
    _check(datasets, settings)
    output = Path(output)
    if folder_kind(output) != RESULTS_KIND:  # our results folder is resumed; any other must be new or empty
        check_writable_output(output, overwrite=False, kind=RESULTS_KIND)
        output.mkdir(parents=True, exist_ok=True)
        mark_folder(output, RESULTS_KIND)
    splits = {data.name: stratified_folds(data.labels, settings.n_folds, settings.seed, settings.validation_fraction) for data in datasets}
    storage = settings.storage or default_storage(output)
    n_studies = sum(1 if is_multitask(name) else len(datasets) for name in settings.models)
    rows, fold_rows = [], []
    with cpu_threads(settings.threads), tqdm(total=n_studies * settings.n_trials, desc="multitask", unit="trial",
                                               disable=not progress) as bar:
        for model_name in settings.models:
            model_rows, model_fold_rows = _benchmark_model(model_name, datasets, splits, settings, storage, output, bar)
            rows += model_rows
            fold_rows += model_fold_rows
            logger.info("%s done: results in %s", model_name, output / model_name)
    summary = pd.DataFrame(rows)
    write_summary(summary, pd.DataFrame(fold_rows), output)
    return summary
