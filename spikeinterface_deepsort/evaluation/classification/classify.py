"""Phase 1: how well does a CNN tell a reference sorting's units apart?

:func:`classify_units` picks units of a reference sorting (Kilosort/Phy, IBL ALF or any
SpikeInterface sorting), cuts their spikes (and optionally spike-free noise windows)
into snippets, trains the package's CNN on a stratified, seeded train split with early
stopping on a validation split, and scores it once on a held-out test split. Everything
lands in a session folder ``<output>/<SESSION>_<NNN>/``; a checkpoint after every epoch
lets ``resume=True`` continue an interrupted session.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader

from ...errors import OutputFolderError, ParameterError
from ...output_folders import check_writable_output, mark_folder, remove_own_folder
from ...learning.models import SnippetClassifier, SnippetEncoder
from ...params import SORTER_PARAMS
from ...stages.preprocessing import filter_and_reference
from ...stages.snippets import SnippetDataset, SnippetStore, extract_snippets
from ...learning.torch_utils import seed_everything
from ...settings import resolve_device
from ...learning.training import EpochShuffleSampler, classification_step, fit, predict
from ...validation import check_recording
from .figures import plot_confusion_matrix, plot_training_curves
from .references import as_sorting, check_reference_matches_recording
from .metrics import classification_metrics, compare_predictions_to_reference, row_normalised_confusion
from .selection import build_windows, extremum_channels, parse_count, select_units

logger = logging.getLogger(__name__)

SNIPPET_MS_BEFORE, SNIPPET_MS_AFTER = 1.0, 1.5
VALIDATION_FRACTION, TEST_FRACTION = 0.15, 0.15
BATCH_SIZE = 128
MIN_PER_CLASS = 10  # fewest samples per class that still leave some for validation and test


@dataclass
class ClassifyResult:
    """What a phase 1 session produced: its headline scores, all metrics, and where the files are."""

    session_folder: Path
    test_accuracy: float
    balanced_accuracy: float
    macro_f1: float
    units: list
    metrics: dict
    history: list[dict]
    paths: dict[str, Path] = field(default_factory=dict)


def session_folder_name(session: str, session_number: int) -> str:
    """``("sup", 0)`` -> ``"SUP_000"``, the original phase 1's naming."""
    if not isinstance(session, str) or not session.strip() or any(c in session for c in "/\\:"):
        raise ParameterError(f"session must be a plain name such as 'sup', got {session!r}.")
    if isinstance(session_number, bool) or not isinstance(session_number, (int, np.integer)) or session_number < 0:
        raise ParameterError(f"session_number must be a whole number >= 0, got {session_number!r}.")
    return f"{session.strip().upper()}_{int(session_number):03d}"


def _options(min_spikes, max_spikes, units, spikes_per_unit, noise, seed, epochs, patience, preprocess_recording) -> dict:
    """The validated options, as stored in ``session.json`` (a resumed session must use the same)."""
    min_count = parse_count(min_spikes, "min_spikes", "none")
    max_count = parse_count(max_spikes, "max_spikes", "max")
    per_unit = parse_count(spikes_per_unit, "spikes_per_unit", "all")
    n_noise = parse_count(noise, "noise", "all")
    if min_count is None or min_count < MIN_PER_CLASS:
        raise ParameterError(f"min_spikes must be a whole number >= {MIN_PER_CLASS} (each unit fills train, "
                             f"validation and test splits), got {min_spikes!r}.")
    if max_count is not None and max_count < min_count:
        raise ParameterError(f"max_spikes ({max_count}) is below min_spikes ({min_count}): give a range with min <= max.")
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 2:
        raise ParameterError(f"units must be a whole number >= 2 (a classifier needs two classes), got {units!r}.")
    if per_unit is not None and per_unit > min_count:
        raise ParameterError(
            f"spikes_per_unit ({per_unit}) exceeds min_spikes ({min_count}): a chosen unit may have fewer spikes than "
            "that. Lower --spikes-per-unit, raise --min-spikes, or use --spikes-per-unit all."
        )
    if per_unit is not None and per_unit < MIN_PER_CLASS:
        raise ParameterError(f"spikes_per_unit must be at least {MIN_PER_CLASS} (to fill train, validation and "
                             f"test) or 'all', got {per_unit}.")
    if n_noise is not None and 0 < n_noise < MIN_PER_CLASS:
        raise ParameterError(f"noise must be 0 (no noise class), at least {MIN_PER_CLASS}, or 'all'; got {n_noise}.")
    for name, value in (("epochs", epochs), ("patience", patience)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{name} must be a whole number >= 1, got {value!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a whole number >= 0, got {seed!r}.")
    return {"min_spikes": min_count, "max_spikes": max_count, "units": int(units), "spikes_per_unit": per_unit,
            "noise": n_noise, "seed": int(seed), "epochs": int(epochs), "patience": int(patience),
            "preprocess": bool(preprocess_recording)}


SESSION_KIND = "classification-session"


def _prepare_session_folder(folder: Path, options: dict, overwrite: bool, resume: bool) -> None:
    """Create the session folder; an existing one is refused unless overwritten or resumed with the same options."""
    if overwrite and resume:
        raise ParameterError("Use either overwrite (start the session again) or resume (continue it), not both.")
    config = folder / "session.json"
    if folder.exists() and any(folder.iterdir()):
        if overwrite:
            remove_own_folder(folder, kind=SESSION_KIND)  # refused unless it is one of our session folders
        elif not resume:
            raise OutputFolderError(
                f"Session folder {str(folder)!r} already exists. Pass --overwrite to start it again, --resume to "
                "continue it, or choose another --session-number."
            )
        elif config.exists() and _without_epochs(json.loads(config.read_text())) != _without_epochs(options):
            raise OutputFolderError(
                f"Session folder {str(folder)!r} was started with other options ({config.read_text()}); a session "
                "resumes only with the options it began with (only --epochs may grow). Use them, or --overwrite, "
                "or another --session-number."
            )
    if overwrite or not folder.exists() or not any(folder.iterdir()):
        check_writable_output(folder, overwrite=False, kind=SESSION_KIND, option="--overwrite")
        folder.mkdir(parents=True, exist_ok=True)
        mark_folder(folder, SESSION_KIND)
    config.write_text(json.dumps(options, indent=2))


def _without_epochs(options: dict) -> dict:
    """Options that must match for a resume: raising ``epochs`` is how a finished session trains longer."""
    return {name: value for name, value in options.items() if name != "epochs"}


def _split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified, seeded train / validation / test indices."""
    everything = np.arange(len(labels))
    rest, test = train_test_split(everything, test_size=TEST_FRACTION, stratify=labels, random_state=seed)
    train, validation = train_test_split(rest, test_size=VALIDATION_FRACTION / (1 - TEST_FRACTION),
                                         stratify=labels[rest], random_state=seed)
    return np.sort(train), np.sort(validation), np.sort(test)


def _class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse class frequency, so that a large noise class cannot dominate the loss."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    return torch.tensor(len(labels) / (n_classes * np.maximum(counts, 1.0)), dtype=torch.float32)


def _write_log_row(path: Path, record: dict) -> None:
    """Append one epoch to the log as it ends, so that a long session can be watched."""
    pd.DataFrame([record]).to_csv(path, mode="a", header=not path.exists(), index=False)


def _labelled_snippets(recording, sorting, chosen, options, folder, resume, rng, job_kwargs):
    """The (preprocessed) recording, the labelled windows, and their snippets (reused when resuming)."""
    if options["preprocess"]:
        defaults = SORTER_PARAMS.defaults()
        recording = filter_and_reference(recording, freq_min=defaults["freq_min"], freq_max=defaults["freq_max"],
                                         common_reference=defaults["common_reference"])
    fs = recording.get_sampling_frequency()
    nbefore, nafter = int(round(SNIPPET_MS_BEFORE * fs / 1000)), int(round(SNIPPET_MS_AFTER * fs / 1000))
    channels = extremum_channels(recording, sorting, chosen, nbefore, nafter, rng, job_kwargs=job_kwargs)
    num_samples = [recording.get_num_samples(s) for s in range(recording.get_num_segments())]
    windows = build_windows(sorting, num_samples, chosen, channels, recording.get_num_channels(),
                            options["spikes_per_unit"], options["noise"], nbefore, nafter, rng)
    snippet_folder = folder / "snippets"
    if resume and SnippetStore.is_complete(snippet_folder):
        store = SnippetStore.load(snippet_folder)
        if len(store) == len(windows.peaks):
            return recording, windows, store
    store = extract_snippets(recording, windows.peaks, snippet_folder, SNIPPET_MS_BEFORE, SNIPPET_MS_AFTER,
                             job_kwargs=job_kwargs)
    return recording, windows, store


def _train(store, windows, train, validation, test, options, folder, resume, device, progress):
    """Train on the train split with early stopping on validation; return the model and the test loader."""
    n_classes = len(windows.class_names)
    train_set = SnippetDataset(store.snippets, store.scale, indices=train, labels=windows.labels[train],
                               augment=True, seed=options["seed"])
    validation_loader, test_loader = (
        DataLoader(SnippetDataset(store.snippets, store.scale, indices=index, labels=windows.labels[index]),
                   batch_size=BATCH_SIZE)
        for index in (validation, test)
    )
    train_loader = DataLoader(train_set, batch_size=BATCH_SIZE,
                              sampler=EpochShuffleSampler(len(train_set), options["seed"], dataset=train_set))
    model = SnippetClassifier(SnippetEncoder(store.n_channels, store.n_samples), n_classes)
    log_path = folder / "training_log.csv"
    training = fit(
        model, train_loader, epochs=options["epochs"], device=device, val_loader=validation_loader,
        patience=options["patience"], checkpoint_path=folder / "checkpoint.pt", resume=resume, progress=progress,
        description="phase 1", on_epoch_end=functools.partial(_write_log_row, log_path),
        loss_step=functools.partial(classification_step, class_weights=_class_weights(windows.labels[train], n_classes)),
    )
    pd.DataFrame(training.history).to_csv(log_path, index=False)  # the whole history, resumed epochs included
    return model, training, test_loader


def classify_units(
    recording,
    reference,
    output: str | Path = "results",
    *,
    min_spikes: int = 1000,
    max_spikes: int | str | None = 5000,
    units: int = 3,
    spikes_per_unit: int | str | None = "all",
    noise: int | str | None = 0,
    session: str = "sup",
    session_number: int = 0,
    seed: int = 0,
    epochs: int = 30,
    patience: int = 5,
    overwrite: bool = False,
    resume: bool = False,
    device: str = "auto",
    preprocess_recording: bool = True,
    job_kwargs: dict | None = None,
    progress: bool = True,
) -> ClassifyResult:
    """Train and test a CNN on ``units`` units of ``reference`` and write the session folder.

    ``reference`` is a Sorting or the path of one (Kilosort/Phy, IBL ALF or saved by
    SpikeInterface). ``max_spikes`` "max", ``spikes_per_unit`` "all" and ``noise`` "all"
    lift the corresponding limit. With ``preprocess_recording`` the recording is bandpass
    filtered (300-6000 Hz) and median referenced first, as the original phase 1 did.
    """
    started = time.perf_counter()
    job_kwargs = dict(job_kwargs or {})
    job_kwargs.setdefault("progress_bar", progress)
    options = _options(min_spikes, max_spikes, units, spikes_per_unit, noise, seed, epochs, patience, preprocess_recording)
    folder = Path(output) / session_folder_name(session, session_number)
    torch_device = resolve_device(device)
    check_recording(recording)
    sorting = as_sorting(reference, recording.get_sampling_frequency())
    check_reference_matches_recording(recording, sorting)
    rng = seed_everything(options["seed"])
    counts = sorting.count_num_spikes_per_unit()
    chosen = select_units(counts, options["min_spikes"], options["max_spikes"], options["units"], rng)
    _prepare_session_folder(folder, options, overwrite, resume)
    logger.info("phase 1 session %s: units %s", folder, [str(u) for u in chosen])

    recording, windows, store = _labelled_snippets(recording, sorting, chosen, options, folder, resume, rng, job_kwargs)
    train, validation, test = _split(windows.labels, options["seed"])
    model, training, test_loader = _train(store, windows, train, validation, test, options, folder, resume,
                                          torch_device, progress)

    # The test split is used here, once, with the best (early-stopped) weights.
    predicted = predict(model, test_loader, torch_device).argmax(dim=1).numpy()
    true = windows.labels[test]
    split_sizes = {"train": len(train), "validation": len(validation), "test": len(test)}
    return _write_results(folder, windows, test, true, predicted, training, counts, chosen, options, split_sizes,
                          torch_device, recording, time.perf_counter() - started)


def _write_results(folder, windows, test, true, predicted, training, counts, chosen, options, split_sizes, device,
                   recording, seconds) -> ClassifyResult:
    paths = {name: folder / filename for name, filename in (
        ("training_log", "training_log.csv"), ("training_curves", "training_curves.png"),
        ("confusion_matrix", "confusion_matrix.csv"), ("confusion_matrix_plot", "confusion_matrix.png"),
        ("metrics", "metrics.json"), ("comparison", "comparison.csv"), ("checkpoint", "checkpoint.pt"))}
    plot_training_curves(training.history, paths["training_curves"], training.best_epoch)
    confusion = row_normalised_confusion(true, predicted, windows.class_names)
    confusion.to_csv(paths["confusion_matrix"])
    plot_confusion_matrix(confusion, paths["confusion_matrix_plot"])
    comparison = compare_predictions_to_reference(windows.peaks[test], true, predicted, windows.unit_ids,
                                                  recording.get_num_segments(), recording.get_sampling_frequency())
    comparison.to_csv(paths["comparison"])

    metrics = classification_metrics(true, predicted, windows.class_names)
    samples_per_class = np.bincount(windows.labels, minlength=len(windows.class_names))
    metrics.update({
        "units": [str(unit) for unit in chosen],
        "reference_spike_counts": {str(unit): int(counts[unit]) for unit in chosen},
        "samples_per_class": {name: int(n) for name, n in zip(windows.class_names, samples_per_class)},
        "split_sizes": split_sizes,
        "seed": options["seed"],
        "options": options,
        "epochs_run": len(training.history),
        "best_epoch": training.best_epoch,
        "stopped_early": training.stopped_early,
        "device": str(device),
        "comparison_mean_accuracy": float(comparison["accuracy"].mean()),
        "seconds": round(seconds, 1),
    })
    paths["metrics"].write_text(json.dumps(metrics, indent=2))
    logger.info("phase 1 %s: test accuracy %.4f, balanced %.4f, macro F1 %.4f", folder.name,
                metrics["test_accuracy"], metrics["balanced_accuracy"], metrics["macro_f1"])
    return ClassifyResult(folder, metrics["test_accuracy"], metrics["balanced_accuracy"], metrics["macro_f1"],
                          list(chosen), metrics, training.history, paths)
