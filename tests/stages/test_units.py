import numpy as np
import pytest
import torch

import spikeinterface.sortingcomponents.clustering.isosplit_isocut as isosplit_isocut
from spikeinterface_deepsort.params import SORTER_PARAMS
from spikeinterface_deepsort.stages import units
from spikeinterface_deepsort.stages.deepcluster import DeepClusterResult
from spikeinterface_deepsort.stages.units import (
    ISOSPLIT_MIN_CLUSTER, drop_small_clusters, isosplit_features, label_all_peaks, merge_clusters, merge_features,
    propagate_labels, run_isosplit_rounds)
from tests.stages.test_deepcluster import _store


def _fake_isosplit(X, initial_labels, min_cluster_size=10, **_):
    """Stands in for ISO-SPLIT (whose numba compilation takes minutes): clusters whose centroids are
    closer than 3 in the first coordinate are merged."""
    labels = np.asarray(initial_labels).copy()
    centres = {c: X[labels == c, 0].mean() for c in np.unique(labels)}
    for c in sorted(centres):
        for other in sorted(centres):
            if other < c and abs(centres[c] - centres[other]) < 3.0 and (labels == other).any():
                labels[labels == c] = other
                break
    return labels


@pytest.fixture
def fake_isosplit(monkeypatch):
    monkeypatch.setattr(isosplit_isocut, "isosplit", _fake_isosplit)


def test_small_clusters_are_dropped_and_the_rest_renumbered():
    labels = np.array([7] * ISOSPLIT_MIN_CLUSTER + [3] * (ISOSPLIT_MIN_CLUSTER - 1) + [-1, 9] + [9] * 20)
    out = drop_small_clusters(labels)
    assert set(out[:ISOSPLIT_MIN_CLUSTER]) == {0} and set(out[ISOSPLIT_MIN_CLUSTER:2 * ISOSPLIT_MIN_CLUSTER]) == {-1}
    assert set(out[-20:]) == {1}


def test_features_are_the_scaled_embedding_beside_the_position_in_pitches():
    rng = np.random.default_rng(0)
    embedding, locations = rng.normal(3, 2, (50, 4)), rng.normal(0, 40, (50, 2))
    features = isosplit_features(embedding, locations)
    assert features.shape == (50, 6)
    np.testing.assert_allclose(features[:, :4], (embedding - embedding.mean(axis=0)) / embedding.std())
    np.testing.assert_allclose(np.diff(features[:2, 4:], axis=0), np.diff(locations[:2], axis=0) / 20.0)
    # Other peaks are placed with the reference's centre and scale, not their own.
    np.testing.assert_allclose(isosplit_features(embedding[:5], locations[:5], (embedding, locations)), features[:5])


def test_close_clusters_are_merged_small_ones_dropped_and_outliers_stay_out(fake_isosplit):
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(c, 0.3, (40, 3)) for c in (0.0, 1.0, 20.0)] + [rng.normal(40, 0.3, (5, 3))])
    start = np.repeat([4, 7, 2, 9], [40, 40, 40, 5])
    start[:3] = -1
    out = merge_clusters(X, start, seed=0)
    assert (out[:3] == -1).all() and (out[-5:] == -1).all()  # outliers and a cluster under the minimum size
    assert len(np.unique(out[3:80])) == 1 and len(np.unique(out[80:120])) == 1 and out[3] != out[80]


def test_merges_see_few_principal_components_of_the_embedding_and_the_position():
    rng = np.random.default_rng(0)
    features = merge_features(rng.normal(size=(100, 16)), rng.normal(0, 40, (100, 2)), seed=0)
    assert features.shape == (100, 6 + 2)
    linear = merge_features(rng.normal(size=(100, 16)), np.column_stack([np.zeros(100), rng.normal(0, 40, 100)]), 0)
    assert linear.shape == (100, 6 + 1)  # x does not vary on a single column: left out


def test_isosplit_rounds_train_on_the_clusters_and_report_every_round(tmp_path, fake_isosplit):
    store, truth = _store(tmp_path, n_per_unit=20)
    params = SORTER_PARAMS.group(SORTER_PARAMS.validate(dict(pseudo_labels="isosplit", max_rounds=2, steps_per_round=2,
                                                             batch_size=16, nmi_stop=1.0)), "deepcluster")
    result = run_isosplit_rounds(store, **params, folder=tmp_path / "dc", num_channels=4, device=torch.device("cpu"),
                                 seed=0, initial_labels=truth, progress=False)
    # Round 0, then one per training (an NMI of 1 between rounds stops them early).
    assert len(result.round_labels) == len(result.history) + 1 >= 2
    np.testing.assert_array_equal(result.round_labels[0], truth)
    assert result.labels is result.round_labels[-1] and result.embedding.shape == (len(truth), 16)
    peak_labels = label_all_peaks(result, store, **SORTER_PARAMS.group(SORTER_PARAMS.defaults(), "units"),
                                  batch_size=64, noise_seed=None, device=torch.device("cpu"))
    np.testing.assert_array_equal(peak_labels, result.labels)


def test_peaks_outside_the_training_subsample_take_their_neighbours_label():
    train = np.array([[0.0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10], [30, 30], [30, 31], [31, 30]])
    labels = np.array([0, 0, 0, 1, 1, 1, -1, -1, -1])
    out = propagate_labels(train, labels, np.array([[0.5, 0.5], [10.5, 10.2], [30.2, 30.2]]))
    np.testing.assert_array_equal(out, [0, 1, -1])


def test_label_all_peaks_uses_the_rounds_clusters_and_propagates_the_rest(tmp_path, monkeypatch):
    store, truth = _store(tmp_path, n_per_unit=40)
    rng = np.random.default_rng(0)
    train = np.sort(rng.choice(len(store), 60, replace=False))
    embedding = np.eye(3)[truth] * 10 + rng.normal(0, 0.1, (len(truth), 3))
    monkeypatch.setattr(units, "embed_snippets", lambda model, store, index, *args, **kwargs: embedding[index])
    trained = DeepClusterResult(None, train, embedding=embedding[train], labels=truth[train])
    out = label_all_peaks(trained, store, position_weight=1.0, min_cluster_size=30, batch_size=64, noise_seed=None,
                          device=torch.device("cpu"))
    np.testing.assert_array_equal(out, truth)


def test_kmeans_path_refuses_isosplit_pseudo_labels(tmp_path):
    from spikeinterface_deepsort.stages.deepcluster import run_deepcluster

    store, _ = _store(tmp_path, n_per_unit=20)
    params = SORTER_PARAMS.group(SORTER_PARAMS.validate(dict(pseudo_labels="isosplit")), "deepcluster")
    with pytest.raises(ValueError, match="isosplit"):
        run_deepcluster(store, **params, folder=tmp_path / "dc", num_channels=4, device=torch.device("cpu"), seed=0)


@pytest.mark.slow
def test_real_isosplit_merges_pieces_of_one_group_and_keeps_groups_apart():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 1.0, (200, 6)) for c in (0.0, 10.0)])
    start = np.repeat([0, 1, 2, 3], 100)  # each group cut in two
    out = merge_clusters(X, start, seed=0)
    assert len(np.unique(out[:200])) == 1 and len(np.unique(out[200:])) == 1 and out[0] != out[-1]


def test_units_module_exposes_the_round_zero_clustering():
    assert callable(units.iterative_isosplit_labels)
