"""Stage 5: units from the learned embedding (HDBSCAN on embedding + position), every peak labelled."""

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

import spikeinterface_deepsort.stages.units as units
from spikeinterface_deepsort.stages.deepcluster import DeepClusterResult, embed_snippets, load_trained_model
from spikeinterface_deepsort.stages.snippets import SnippetStore
from spikeinterface_deepsort.stages.units import fit_units, label_all_peaks

CPU = torch.device("cpu")


def _blobs(rng, n_per_unit=200, n_outliers=12):
    """Three tight blobs in an 8-D embedding, at three depths, and a few peaks far from all of them."""
    centres = rng.normal(0, 6, size=(3, 8))
    embedding = np.concatenate([c + rng.normal(0, 0.3, size=(n_per_unit, 8)) for c in centres])
    depths = np.repeat([0.0, 60.0, 120.0], n_per_unit)
    locations = np.stack([rng.normal(0, 3, depths.size), depths + rng.normal(0, 3, depths.size)], axis=1)
    outliers = rng.uniform(-40, 40, size=(n_outliers, 8))
    outlier_locations = np.stack([rng.uniform(-200, 200, n_outliers), rng.uniform(-200, 300, n_outliers)], axis=1)
    truth = np.concatenate([np.repeat([0, 1, 2], n_per_unit), -np.ones(n_outliers, int)])
    return (np.concatenate([embedding, outliers]).astype(np.float32),
            np.concatenate([locations, outlier_locations]).astype(np.float32), truth)


def test_well_separated_blobs_are_three_units_and_strays_are_outliers():
    embedding, locations, truth = _blobs(np.random.default_rng(0))
    finder, labels = fit_units(embedding, locations, position_weight=1.0, min_cluster_size=30)
    assert labels.dtype == np.int64 and len(labels) == len(truth)
    assert len(set(labels[truth >= 0]) - {-1}) == 3
    assert adjusted_rand_score(truth[truth >= 0], labels[truth >= 0]) > 0.95
    assert np.mean(labels[truth < 0] == -1) >= 0.9  # the stray peaks belong to no unit
    # New peaks near a blob's centre are assigned to that blob's unit.
    rng = np.random.default_rng(1)
    new = np.concatenate([embedding[truth == k][:5] + rng.normal(0, 0.05, (5, 8)) for k in range(3)]).astype(np.float32)
    new_locations = np.concatenate([locations[truth == k][:5] for k in range(3)])
    predicted = finder.predict(new, new_locations)
    expected = np.concatenate([labels[truth == k][:5] for k in range(3)])
    assert np.mean(predicted == expected) > 0.9
    assert finder.predict(np.zeros((0, 8), np.float32), np.zeros((0, 2), np.float32)).shape == (0,)


def test_position_tells_apart_units_of_the_same_shape():
    rng = np.random.default_rng(2)
    embedding = rng.normal(0, 0.3, size=(400, 8)).astype(np.float32)  # one shape
    depths = np.repeat([0.0, 200.0], 200)
    locations = np.stack([np.zeros(400), depths + rng.normal(0, 3, 400)], axis=1).astype(np.float32)
    _, labels = fit_units(embedding, locations, position_weight=1.0, min_cluster_size=30)
    assert adjusted_rand_score(depths, labels) > 0.95
    _, blind = fit_units(embedding, locations, position_weight=0.0, min_cluster_size=30)
    assert adjusted_rand_score(depths, blind) < 0.5  # without position they are one unit


@pytest.fixture(scope="module")
def trained(sorter_folder):
    """The session sort's snippets and trained network, half of the peaks as the training peaks."""
    output = sorter_folder / "sorter_output"
    store = SnippetStore.load(output / "snippets")
    model = load_trained_model(output / "deepcluster")
    return DeepClusterResult(model=model, train_indices=np.arange(0, len(store), 2)), store


def test_every_peak_is_labelled(trained, monkeypatch):
    result, store = trained
    options = dict(position_weight=1.0, min_cluster_size=30, batch_size=256, noise_seed=None, device=CPU)
    labels = label_all_peaks(result, store, **options)
    assert labels.shape == (len(store),) and labels.dtype == np.int64
    assert labels.min() >= -1 and len(np.unique(labels[labels >= 0])) >= 2
    assert np.mean(labels >= 0) > 0.5
    others = np.setdiff1d(np.arange(len(store)), result.train_indices)
    assert set(labels[others]) <= set(labels[result.train_indices])  # assigned to the units fitted
    # The training peaks' labels are fit_units' on their embedding; given the embedding, the same.
    embedding = embed_snippets(result.model, store, result.train_indices, 256, CPU)
    _, train_labels = fit_units(embedding, store.locations[result.train_indices], position_weight=1.0,
                                min_cluster_size=30)
    np.testing.assert_array_equal(labels[result.train_indices], train_labels)
    given = DeepClusterResult(model=result.model, train_indices=result.train_indices, embedding=embedding)
    np.testing.assert_array_equal(label_all_peaks(given, store, **options), labels)
    # In chunks of any size: the same labels (memory stays flat on long recordings).
    monkeypatch.setattr(units, "EMBEDDING_CHUNK", 97)
    np.testing.assert_array_equal(label_all_peaks(given, store, **options), labels)
