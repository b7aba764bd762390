"""``deepspikesort multitask`` and ``deepspikesort make-csv-datasets``."""

from __future__ import annotations

import argparse
import logging
import time

from ..errors import ParameterError
from ..evaluation.multitask.experiment import CLASS_WEIGHTINGS, TrainingSettings
from ..evaluation.multitask.loader import load_datasets
from ..evaluation.multitask.networks import MODEL_NAMES
from ..evaluation.multitask.normalisation import NORMALISATIONS
from ..evaluation.multitask.runner import BenchmarkSettings, run_benchmark
from ..evaluation.multitask.search import SEARCH_NORMALISATION
from ..evaluation.multitask.synthetic import DATASET_SPECS, write_csv_datasets

logger = logging.getLogger(__name__)
DEFAULTS = BenchmarkSettings()


def _model_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in MODEL_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown model(s) {unknown}; choose from {','.join(MODEL_NAMES)}")
    return names


def _task_weights(text: str) -> dict[str, float]:
    """'A12=2,A21=1.5' -> {'A12': 2.0, 'A21': 1.5}; files not named keep weight 1."""
    weights = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"task weight {item!r} is not NAME=NUMBER") from None
        if weight < 0:
            raise argparse.ArgumentTypeError(f"task weight {item!r} is negative")
        weights[name.strip()] = weight
    return weights


def run_multitask(args: argparse.Namespace) -> int:
    if args.trials < 1 or args.folds < 2:
        raise ParameterError("--trials must be >= 1 and --folds >= 2.")
    datasets = load_datasets(args.data, min_class_size=args.folds)
    training = TrainingSettings(
        epochs=args.epochs, patience=args.patience, batch_size=args.batch_size, class_weights=args.class_weights,
        task_weights=args.task_weights, standardise=not args.no_standardise, device=args.device,
    )
    settings = BenchmarkSettings(
        models=args.models, n_folds=args.folds, n_trials=args.trials, seed=args.seed, normalisation=args.normalisation,
        storage=args.storage, threads=args.threads, training=training,
    )
    logger.info("files: %s", ", ".join(f"{data.name} ({len(data.labels)} rows, {len(data.classes)} classes)" for data in datasets))
    started = time.perf_counter()
    summary = run_benchmark(datasets, args.output, settings, progress=not args.quiet)
    logger.info("%d models x %d files in %.0f s; summary in %s/summary.csv",
                len(args.models), len(datasets), time.perf_counter() - started, args.output)
    print(summary[["model", "dataset", "accuracy_mean", "accuracy_std", "mcc_mean"]].round(3).to_string(index=False))
    return 0


def run_make_csv_datasets(args: argparse.Namespace) -> int:
    for path in write_csv_datasets(args.folder, seed=args.seed):
        print(path)
    return 0


def add_commands(subparsers) -> None:
    bench = subparsers.add_parser(
        "multitask",
        help="single-task vs multi-task classification benchmark on waveform CSV files",
        description="Nested evaluation (stratified folds, inner validation for early stopping and the Optuna search, "
        "each test fold scored once) of single-task and multi-task FFN, CNN and LSTM classifiers.",
    )
    bench.add_argument("--data", required=True, help="folder of CSV files (',0,...,N-1,track'); see make-csv-datasets")
    bench.add_argument("--output", required=True, help="results folder (created; rerunning resumes its Optuna studies)")
    bench.add_argument("--models", type=_model_list, default=DEFAULTS.models, help=f"comma-separated, default {','.join(MODEL_NAMES)}")
    bench.add_argument("--folds", type=int, default=DEFAULTS.n_folds, help="test folds per file (default %(default)s)")
    bench.add_argument("--trials", type=int, default=DEFAULTS.n_trials, help="Optuna trials per study (default %(default)s)")
    bench.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed of folds, sampler and training (default %(default)s)")
    bench.add_argument("--storage", default=None, help="Optuna RDB URL shared between machines (default sqlite:///OUTPUT/optuna.db)")
    bench.add_argument("--normalisation", default=DEFAULTS.normalisation, choices=(*NORMALISATIONS, SEARCH_NORMALISATION),
                       help="per-waveform scaling, or 'search' to let Optuna choose (default %(default)s)")
    bench.add_argument("--no-standardise", action="store_true", help="skip the per-sample standardisation fitted on training rows")
    bench.add_argument("--class-weights", default="none", choices=CLASS_WEIGHTINGS, help="cross-entropy class weights (default %(default)s)")
    bench.add_argument("--task-weights", type=_task_weights, default={}, help="multi-task loss weights, e.g. A12=2,A21=1.5 (default 1 each)")
    bench.add_argument("--epochs", type=int, default=DEFAULTS.training.epochs, help="maximum epochs (default %(default)s)")
    bench.add_argument("--patience", type=int, default=DEFAULTS.training.patience, help="early-stopping patience (default %(default)s)")
    bench.add_argument("--batch-size", type=int, default=DEFAULTS.training.batch_size, help="rows per task per step (default %(default)s)")
    bench.add_argument("--device", default="auto", help="auto, cpu or cuda (default %(default)s)")
    bench.add_argument("--threads", type=int, default=DEFAULTS.threads, help="PyTorch CPU threads (default %(default)s)")
    bench.set_defaults(func=run_multitask)

    make = subparsers.add_parser(
        "make-csv-datasets",
        help="write synthetic A2, A3, A4, A12 and A21 waveform CSV files",
        description="Synthetic stand-ins for the private files: " + ", ".join(
            f"{spec.name} ({sum(spec.tracks.values())} rows, {len(spec.tracks)} tracks)" for spec in DATASET_SPECS),
    )
    make.add_argument("folder", help="where to write the CSV files")
    make.add_argument("--seed", type=int, default=0, help="default %(default)s")
    make.set_defaults(func=run_make_csv_datasets)
