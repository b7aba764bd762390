"""Stage 5: units from the learned embedding (HDBSCAN on embedding + position, or ISO-SPLIT rounds), every peak labelled."""

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

import spikeinterface_deepsort.stages.units as units
from spikeinterface_deepsort.stages.deepcluster import DeepClusterResult, embed_snippets, load_trained_model
from spikeinterface_deepsort.stages.snippets import SnippetStore
from spikeinterface_deepsort.stages.units import fit_units, label_all_peaks
import spikeinterface.sortingcomponents.clustering.isosplit_isocut as isosplit_isocut
from spikeinterface_deepsort.params import SORTER_PARAMS
from spikeinterface_deepsort.stages.units import (
    ISOSPLIT_MIN_CLUSTER, drop_small_clusters, isosplit_features, merge_clusters, merge_features, propagate_labels,
    run_isosplit_rounds)
from helpers import snippet_store as _store

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
    options = dict(position_weight=1.0, min_cluster_size=30, small_unit_size=0, assign_outliers=False, batch_size=256,
                   noise_seed=None, device=CPU)
    labels, _ = label_all_peaks(result, store, **options)
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
    np.testing.assert_array_equal(label_all_peaks(given, store, **options)[0], labels)
    # In chunks of any size: the same labels (memory stays flat on long recordings).
    monkeypatch.setattr(units, "EMBEDDING_CHUNK", 97)
    np.testing.assert_array_equal(label_all_peaks(given, store, **options)[0], labels)
    # With the outliers assigned: HDBSCAN's units keep their peaks, and some outliers join them.
    assigned, _ = label_all_peaks(given, store, **(options | dict(assign_outliers=True)))
    np.testing.assert_array_equal(assigned[labels >= 0], labels[labels >= 0])
    assert (assigned >= 0).sum() > (labels >= 0).sum()


def test_outliers_join_the_unit_they_sit_in_and_far_ones_stay_out():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    features = np.concatenate([rng.normal(c, 1.0, (300, 2)) for c in centres])
    labels = np.repeat([0, 1], 300)
    assigner = units.OutlierAssigner(features, labels)
    edge = np.array([[2.5, 0.0], [7.8, 0.5]])  # each unit's sparse edge
    between = np.array([[5.0, 0.0]])  # as near one unit as the other, far from both
    far = np.array([[0.0, 40.0]])  # a noise crossing
    query = np.concatenate([edge, between, far])
    out = assigner.assign(query, np.full(len(query), -1))
    np.testing.assert_array_equal(out[:2], [0, 1])
    assert out[3] == -1
    # Peaks that already have a unit keep it.
    np.testing.assert_array_equal(assigner.assign(features[:5], labels[:5]), labels[:5])


# pseudo_labels="isosplit"

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
    peak_labels, _ = label_all_peaks(result, store, **SORTER_PARAMS.group(SORTER_PARAMS.defaults(), "units"),
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
    out, _ = label_all_peaks(trained, store, position_weight=1.0, min_cluster_size=30, small_unit_size=0,
                             assign_outliers=True, batch_size=64, noise_seed=None, device=torch.device("cpu"))
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


@pytest.mark.parametrize("method", ["iterative-hdbscan", "iterative-isosplit"])
def test_spikeinterface_clustering_labels_every_peak_and_finds_the_units(small_case, method):
    from spikeinterface.preprocessing import bandpass_filter, whiten
    from spikeinterface.sortingcomponents.peak_detection import detect_peaks

    recording, gt = small_case
    rec = whiten(bandpass_filter(recording), dtype="float32", seed=0)
    job_kwargs = dict(n_jobs=1, progress_bar=False)
    peaks = detect_peaks(rec, method="locally_exclusive", method_kwargs=dict(detect_threshold=5), job_kwargs=job_kwargs)
    labels = units.spikeinterface_clustering_labels(rec, peaks, None, method=method, seed=0, job_kwargs=job_kwargs)
    assert labels.shape == (len(peaks),) and labels.dtype == np.int64
    # Each true unit's peaks (within 0.4 ms of one of its spikes) mostly fall in one cluster that holds
    # mostly them: recall and precision of the unit's main cluster.
    truth = gt.to_spike_vector()
    after = np.searchsorted(truth["sample_index"], peaks["sample_index"]).clip(1, len(truth) - 1)
    nearest = np.where(np.abs(truth["sample_index"][after - 1].astype(int) - peaks["sample_index"])
                       < np.abs(truth["sample_index"][after].astype(int) - peaks["sample_index"]), after - 1, after)
    close = np.abs(truth["sample_index"][nearest].astype(int) - peaks["sample_index"]) <= 12
    unit_of_peak = np.where(close, truth["unit_index"][nearest], -1)
    scores = []
    for u in range(len(gt.unit_ids)):
        mine = (unit_of_peak == u) & (labels >= 0)
        if not mine.any():  # not detected, or every peak of it left out
            scores.append(0.0)
            continue
        main = np.bincount(labels[mine]).argmax()
        both = (mine & (labels == main)).sum()
        scores.append(min(both / (unit_of_peak == u).sum(), both / ((labels == main) & close).sum()))
    assert np.median(scores) > 0.6, scores


def test_small_units_among_the_outliers_get_their_own_labels_in_the_second_pass():
    rng = np.random.default_rng(3)
    embedding, locations, truth = _blobs(rng)
    # Two more units of 14 peaks each, away from the others: too few for min_cluster_size=30, even
    # together, so outliers in the first pass; enough for a second pass at 10.
    small = [rng.normal(0, 6, size=8) + rng.normal(0, 0.3, size=(14, 8)) for _ in range(2)]
    embedding = np.concatenate([embedding] + small).astype(np.float32)
    depths = np.repeat([300.0, 400.0], 14)
    locations = np.concatenate([locations, np.column_stack([np.zeros(28), depths])]).astype(np.float32)
    _, first = fit_units(embedding, locations, position_weight=1.0, min_cluster_size=30)
    assert (first[-28:] == -1).all()
    _, labels = fit_units(embedding, locations, position_weight=1.0, min_cluster_size=30, small_unit_size=10)
    for unit in (labels[-28:-14], labels[-14:]):
        assert len(set(unit)) == 1 and unit[0] >= 0 and unit[0] not in set(labels[:-28])
    assert labels[-1] != labels[-15]
    np.testing.assert_array_equal(labels[:-28], first[:-28])  # the first pass's units are kept as they were
