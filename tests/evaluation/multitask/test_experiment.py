"""Training on one fold sees only its training and validation rows; scoring is in eval mode."""

import numpy as np
import torch

from spikeinterface_deepsort.evaluation.multitask import experiment
from spikeinterface_deepsort.evaluation.multitask.experiment import TrainingSettings, predict_labels, score_test, train_fold
from spikeinterface_deepsort.evaluation.multitask.folds import stratified_folds
from spikeinterface_deepsort.evaluation.multitask.loader import WaveformDataset
from spikeinterface_deepsort.evaluation.multitask.networks import build_model
from spikeinterface_deepsort.evaluation.multitask.normalisation import Normaliser
from spikeinterface_deepsort.evaluation.multitask.synthetic import DatasetSpec, make_dataset

SETTINGS = TrainingSettings(epochs=4, patience=2, batch_size=16, device="cpu")
PARAMS = {"learning_rate": 3e-3, "dropout": 0.1, "hidden": 16, "normalisation": "zscore"}


def _dataset(name, tracks, separation=0.8):
    table = make_dataset(DatasetSpec(name, tracks, separation), seed=0)
    classes = sorted(set(table["track"]))
    labels = table["track"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    return WaveformDataset(name, table.drop(columns="track").to_numpy(np.float32), labels, classes)


DATA = [_dataset("T1", {"a": 30, "b": 30}), _dataset("T2", {"a": 20, "b": 20, "c": 20})]
SPLITS = {data.name: stratified_folds(data.labels, 3, seed=0)[1] for data in DATA}


def test_normalisers_are_fitted_on_training_rows_only(monkeypatch):
    fitted = []
    original_fit = Normaliser.fit

    def recording_fit(self, rows):
        fitted.append(np.array(rows))
        return original_fit(self, rows)

    monkeypatch.setattr(experiment.Normaliser, "fit", recording_fit)
    train_fold("mtl-ffn", PARAMS, DATA, SPLITS, SETTINGS, seed=0)
    assert len(fitted) == 2
    for rows, data in zip(fitted, DATA):
        np.testing.assert_array_equal(rows, data.waveforms[SPLITS[data.name].train])


def test_test_rows_never_reach_training_or_validation():
    clean = train_fold("mtl-cnn", {**PARAMS, "width": 8}, DATA, SPLITS, SETTINGS, seed=0)
    poisoned = []
    for data in DATA:
        waveforms = data.waveforms.copy()
        waveforms[SPLITS[data.name].test] = np.nan
        poisoned.append(WaveformDataset(data.name, waveforms, data.labels, data.classes))
    dirty = train_fold("mtl-cnn", {**PARAMS, "width": 8}, poisoned, SPLITS, SETTINGS, seed=0)
    assert dirty.validation_scores == clean.validation_scores
    for a, b in zip(clean.model.state_dict().values(), dirty.model.state_dict().values()):
        assert torch.equal(a, b)
    scores, per_class = score_test(clean, DATA[1], SPLITS["T2"])
    assert 0.0 <= scores["accuracy"] <= 1.0 and list(per_class["class"]) == ["a", "b", "c"]


def test_same_seed_same_model():
    a = train_fold("lstm", PARAMS, DATA[:1], SPLITS, SETTINGS, seed=3)
    b = train_fold("lstm", PARAMS, DATA[:1], SPLITS, SETTINGS, seed=3)
    assert a.validation_scores == b.validation_scores and a.best_epoch == b.best_epoch


def test_scoring_is_in_eval_mode():
    torch.manual_seed(0)
    model = build_model("ffn", 30, {"T1": 2}, {"hidden": 32, "dropout": 0.9})
    model.train()
    waveforms = np.random.default_rng(0).normal(size=(50, 30)).astype(np.float32)
    first = predict_labels(model, waveforms, "T1", torch.device("cpu"))
    assert not model.training
    np.testing.assert_array_equal(first, predict_labels(model, waveforms, "T1", torch.device("cpu")))


def test_task_and_class_weights_change_multitask_training_only_task_weights_ignored_alone():
    def trunk_weights(model_name, datasets, **options):
        settings = TrainingSettings(epochs=2, patience=2, batch_size=16, device="cpu", **options)
        return train_fold(model_name, PARAMS, datasets, SPLITS, settings, seed=0).model.trunk.layers[0].weight

    plain = trunk_weights("mtl-ffn", DATA)
    assert not torch.equal(plain, trunk_weights("mtl-ffn", DATA, task_weights={"T2": 5.0}))
    assert not torch.equal(plain, trunk_weights("mtl-ffn", DATA, class_weights="balanced"))
    assert torch.equal(trunk_weights("ffn", DATA[:1]), trunk_weights("ffn", DATA[:1], task_weights={"T1": 5.0}))
