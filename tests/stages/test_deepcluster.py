import numpy as np
import pandas as pd
import torch

from spikeinterface_deepsort.stages.deepcluster import (
    MIN_PSEUDO_CLASS,
    choose_training_peaks,
    cluster_pseudo_labels,
    embed_snippets,
    intersect_partitions,
    number_of_clusters,
    pseudo_labels_of_runs,
    run_deepcluster,
)
from spikeinterface_deepsort.params import SORTER_PARAMS
from spikeinterface_deepsort.stages.snippets import SnippetStore

from helpers import snippet_store as _store


def test_training_subsample_is_seeded_sorted_and_bounded():
    a = choose_training_peaks(1000, 100, np.random.default_rng(1))
    b = choose_training_peaks(1000, 100, np.random.default_rng(1))
    assert len(a) == 100 and np.array_equal(a, b) and np.all(np.diff(a) > 0)
    assert len(choose_training_peaks(50, 100, np.random.default_rng(1))) == 50


def test_more_clusters_than_channels_but_bounded_by_data():
    assert number_of_clusters(32, 100_000, 3.0) == 96
    assert number_of_clusters(32, 200, 3.0) == 10


def test_pseudo_labels_have_no_empty_cluster():
    features = np.random.default_rng(0).normal(size=(300, 4))
    features[:5] += 100  # an extreme outlier group pulls centroids
    labels = cluster_pseudo_labels(features, 12, seed=0)
    assert np.all(np.bincount(labels, minlength=12) > 0)


def test_intersected_partitions_keep_a_pair_apart_that_one_run_merged():
    # 100 points of a large unit and 60 of a small one: the first run merges them (cluster 0), the
    # second separates them; 5 points of the large unit that the second run drew elsewhere are a sliver.
    first = np.array([0] * 160 + [1] * 80)
    second = np.array([0] * 95 + [2] * 5 + [1] * 60 + [2] * 80)
    labels = intersect_partitions([first, second], min_size=30)
    large, small, other = labels[:100], labels[100:160], labels[160:]
    assert len(set(large)) == 1 and len(set(small)) == 1 and len(set(other)) == 1  # the sliver rejoined its unit
    assert len({large[0], small[0], other[0]}) == 3 and labels.max() == 2


def test_one_kmeans_run_gives_the_single_run_labels_and_more_runs_no_slivers():
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(c, 1.0, size=(n, 4)) for c, n in ((0, 400), (4, 60), (9, 300))])
    first = cluster_pseudo_labels(features, 10, seed=3)
    assert np.array_equal(pseudo_labels_of_runs(features, 10, seed=3, runs=1), first)
    labels = pseudo_labels_of_runs(features, 10, seed=3, runs=3)
    assert labels.max() + 1 >= 10  # at least the first run's classes
    for label in np.unique(labels):  # every class is a whole first-run cluster or no sliver
        members = labels == label
        assert members.sum() >= MIN_PSEUDO_CLASS or len(np.unique(first[members])) == 1


def _run(store, folder, seed=0, resume=False, **settings):
    """run_deepcluster with the sorter's defaults but for ``settings``, on the CPU, on a 4-channel probe."""
    params = SORTER_PARAMS.group(SORTER_PARAMS.validate(settings), "deepcluster")
    return run_deepcluster(store, **params, folder=folder, num_channels=4, device=torch.device("cpu"), seed=seed,
                           progress=False, resume=resume)


def test_deepcluster_rounds_write_history_and_learn_separable_units(tmp_path):
    store, truth = _store(tmp_path)
    result = _run(store, tmp_path / "dc", max_rounds=3, steps_per_round=30, batch_size=64, cluster_factor=1.0)
    history = pd.read_csv(tmp_path / "dc" / "deepcluster_history.csv")
    assert list(history["round"]) == list(range(1, len(history) + 1)) and len(history) >= 2
    assert history["nmi"].iloc[1:].between(0, 1).all()
    steps = pd.read_csv(tmp_path / "dc" / "deepcluster_steps.csv")
    trained_rounds = history.loc[history["train_loss"].notna(), "round"]
    assert list(steps.groupby("round").size().index) == list(trained_rounds)
    assert (steps.groupby("round")["step"].max() == 30).all() and np.isfinite(steps["loss"]).all()
    checkpoint = torch.load(tmp_path / "dc" / "deepcluster_checkpoint.pt", weights_only=False)
    assert checkpoint["encoder_kwargs"] == {"in_channels": 4, "n_samples": store.n_samples, "embedding_dim": 16}
    # Every pseudo-label cluster holds spikes of a single true unit: over-clustering, never mixing.
    labels = checkpoint["labels"]  # the last round's pseudo-labels of the training peaks
    purity = [np.bincount(truth[labels == c]).max() / (labels == c).sum() for c in np.unique(labels)]
    assert min(purity) > 0.95


def test_deepcluster_resumes_after_the_last_finished_round(tmp_path):
    store, _ = _store(tmp_path)
    _run(store, tmp_path / "dc", max_rounds=2, steps_per_round=10, batch_size=64, nmi_stop=1.0)
    resumed = _run(store, tmp_path / "dc", resume=True, max_rounds=3, steps_per_round=10, batch_size=64, nmi_stop=1.0)
    assert [row["round"] for row in resumed.history] == [1, 2, 3]


def test_final_embedding_is_kept_and_equals_a_fresh_one_with_the_same_noise_seed(tmp_path):
    # The units stage reuses the last round's embedding instead of embedding the training peaks again:
    # it must be exactly what a fresh pass with the same noise seed gives (stochastic_embedding), or
    # without it the deterministic pass.
    store, _ = _store(tmp_path)
    result = _run(store, tmp_path / "dc", seed=3, max_rounds=4, steps_per_round=20, batch_size=64, nmi_stop=0.0,
                  stochastic_embedding=True)
    assert result.history[-1]["train_loss"] is None and result.embedding is not None
    fresh = embed_snippets(result.model, store, result.train_indices, 64, torch.device("cpu"), noise_seed=3)
    np.testing.assert_array_equal(result.embedding, fresh)
    other = embed_snippets(result.model, store, result.train_indices, 64, torch.device("cpu"), noise_seed=4)
    assert not np.array_equal(fresh, other)  # dropout is active: another seed, another draw
    plain = embed_snippets(result.model, store, result.train_indices, 64, torch.device("cpu"))
    alone = embed_snippets(result.model, store, result.train_indices[:10], 64, torch.device("cpu"))
    np.testing.assert_allclose(plain[:10], alone, atol=1e-5)  # without noise: independent of the batch
    deterministic = _run(store, tmp_path / "dc_plain", seed=3, max_rounds=4, steps_per_round=20, batch_size=64,
                         nmi_stop=0.0)  # the default: no dropout noise
    np.testing.assert_array_equal(deterministic.embedding, embed_snippets(
        deterministic.model, store, deterministic.train_indices, 64, torch.device("cpu")))


def test_model_loads_from_its_constructor_arguments(tmp_path, sorter_folder):
    """load_trained_model builds the network from the arguments saved with its weights (no layer names)."""
    import torch

    from spikeinterface_deepsort.learning.models import SnippetClassifier, SnippetEncoder
    from spikeinterface_deepsort.learning.training import save_atomic
    from spikeinterface_deepsort.stages.deepcluster import CHECKPOINT, load_trained_model

    kwargs = dict(in_channels=3, n_samples=40, embedding_dim=6, width=4, dropout=0.2)
    model = SnippetClassifier(SnippetEncoder(**kwargs), 5).eval()
    save_atomic({"model": model.state_dict(), "epoch": 0, "encoder_kwargs": kwargs, "n_classes": 5},
                tmp_path / CHECKPOINT)
    snippets = torch.randn(7, 3, 40)
    with torch.no_grad():
        assert torch.equal(load_trained_model(tmp_path)(snippets), model(snippets))
    # the sorter's own checkpoint
    output = sorter_folder / "sorter_output"
    store = SnippetStore.load(output / "snippets")
    assert load_trained_model(output / "deepcluster").encoder.in_channels == store.n_channels
    assert load_trained_model(tmp_path / "nothing here") is None


def test_pca_features_train_nothing_and_embed_as_the_snippets_principal_components(tmp_path):
    from sklearn.decomposition import PCA

    from spikeinterface_deepsort.learning.models import PCAEncoder
    from spikeinterface_deepsort.stages.deepcluster import embed_snippets

    store, _ = _store(tmp_path)
    result = _run(store, tmp_path / "dc", features="pca", embedding_dim=6)
    assert isinstance(result.model, PCAEncoder) and result.history == []
    assert not (tmp_path / "dc" / "deepcluster_checkpoint.pt").exists()
    embedding = embed_snippets(result.model, store, np.arange(len(store)), 64, torch.device("cpu"))
    flat = np.asarray(store.snippets, dtype=np.float32).transpose(0, 2, 1).reshape(len(store), -1) / store.scale
    expected = PCA(n_components=6, random_state=0).fit(flat[result.train_indices]).transform(flat)
    np.testing.assert_allclose(embedding, expected, atol=1e-3 * np.abs(expected).max())
