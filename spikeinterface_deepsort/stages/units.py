"""Stage 5: units from the learned embedding, their number found from the data.

HDBSCAN on the standardised embedding plus the peak's position decides how many units
there are and marks outlier peaks (label -1). It is fitted on the training subsample;
every other peak is embedded in chunks and assigned with HDBSCAN's
``approximate_predict``, so memory stays flat however many peaks a long recording has.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import hdbscan
import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier

from ..learning.models import SnippetClassifier, SnippetEncoder
from .deepcluster import (DeepClusterResult, _train_round, choose_training_peaks, embed_snippets, embed_training_peaks,
                          embedding_noise_seed)
from .snippets import SnippetDataset, SnippetStore

POSITION_SCALE_UM = 20.0  # about the contact pitch: one pitch weighs like one embedding standard deviation


@dataclass
class UnitFinder:
    embedding_mean: np.ndarray
    embedding_scale: float
    location_centre: np.ndarray
    position_weight: float
    clusterer: hdbscan.HDBSCAN | None = None

    def features(self, embedding: np.ndarray, locations: np.ndarray) -> np.ndarray:
        # One global scale keeps the embedding's own relative variances (no per-axis whitening).
        shape = (embedding - self.embedding_mean) / self.embedding_scale
        position = (np.asarray(locations, np.float32) - self.location_centre) * (self.position_weight / POSITION_SCALE_UM)
        return np.concatenate([shape, position], axis=1).astype(np.float64)

    def predict(self, embedding: np.ndarray, locations: np.ndarray) -> np.ndarray:
        if len(embedding) == 0:
            return np.zeros(0, dtype=np.int64)
        # Built on first use: when every peak was a training peak nothing is predicted, and the
        # prediction data (a third of the fit's time) is never needed.
        if not hasattr(self.clusterer, "prediction_data_"):  # the property raises until generated
            self.clusterer.generate_prediction_data()
        labels, _ = hdbscan.approximate_predict(self.clusterer, self.features(embedding, locations))
        return labels.astype(np.int64)


def fit_units(embedding: np.ndarray, locations: np.ndarray, *, position_weight: float, min_cluster_size: int,
              small_unit_size: int = 0) -> tuple[UnitFinder, np.ndarray]:
    """Fit the unit finder on the training peaks; return it and their labels (-1 = outlier).

    With ``small_unit_size``, the first pass's outliers are clustered again with that minimum size
    (their labels follow the first pass's, ``finder.clusterer.labels_``):
    a slow-firing unit has too few spikes for ``min_cluster_size`` (a 0.3-Hz unit fires 27 times in
    90 s), and left among the outliers it would never get a template. Lowering ``min_cluster_size``
    itself splits large units into small pieces; the outliers alone hold few of those."""
    finder = UnitFinder(
        embedding_mean=embedding.mean(axis=0),
        embedding_scale=float(embedding.std()) or 1.0,
        location_centre=np.median(locations, axis=0).astype(np.float32),
        position_weight=position_weight,
    )
    features = finder.features(embedding, locations)
    finder.clusterer = _hdbscan(min_cluster_size).fit(features)
    labels = finder.clusterer.labels_.astype(np.int64)
    outliers = np.flatnonzero(labels < 0)
    if small_unit_size > 0 and len(outliers) >= 2 * small_unit_size:
        small = _hdbscan(small_unit_size).fit(features[outliers]).labels_.astype(np.int64)
        labels[outliers[small >= 0]] = small[small >= 0] + labels.max() + 1
    return finder, labels


def _hdbscan(min_cluster_size: int) -> hdbscan.HDBSCAN:
    min_size = int(min_cluster_size)
    # "leaf" keeps the finest stable clusters: close units stay apart, and over-split ones are
    # merged by curation (docs/deepcluster.md compares it with "eom"). min_samples = min_cluster_size,
    # HDBSCAN's own default: the density is smoothed over as many neighbours as a unit must have, so
    # that the deterministic embedding of a low-SNR unit is not cut into density fragments (with 10,
    # the embedding needed dropout noise to hold such a unit together: docs/defaults.md).
    return hdbscan.HDBSCAN(min_cluster_size=min_size, min_samples=min_size, cluster_selection_method="leaf",
                           core_dist_n_jobs=1)


# Chosen on the dev draws' clustering-only scores (docs/defaults.md): with 0.8 and 1x the 95th percentile, few
# outliers were assigned (their neighbours lie farther than a unit's own do: they are its sparse edge).
ASSIGN_NEIGHBOURS = 10
ASSIGN_AGREEMENT = 0.5
ASSIGN_QUANTILE = 0.95
ASSIGN_RADIUS_FACTOR = 3.0


class OutlierAssigner:
    """HDBSCAN's outliers given to a unit where the learned features say they belong to it: at least
    ASSIGN_AGREEMENT of their ASSIGN_NEIGHBOURS nearest unit peaks (training peaks with a unit) carry one unit,
    and their mean distance to them is within ASSIGN_RADIUS_FACTOR x that unit's spread (ASSIGN_QUANTILE of
    its members' mean distance to their own neighbours). Leaf selection leaves a unit's sparser edge as
    outliers (up to a third of a unit's peaks on the dense hybrids); far-off noise crossings stay outliers.
    Why not HDBSCAN's soft clustering (``all_points_membership_vectors``): it gives every outlier some
    membership, noise included, and costs a pass over all pairs of clusters per point."""

    def __init__(self, features: np.ndarray, labels: np.ndarray):
        from sklearn.neighbors import NearestNeighbors

        kept = labels >= 0
        self.labels = labels[kept]
        self.k = int(min(ASSIGN_NEIGHBOURS, max(kept.sum() - 1, 1)))
        self.neighbours = NearestNeighbors(n_neighbors=self.k + 1).fit(features[kept])
        distances, _ = self.neighbours.kneighbors(features[kept])
        spread = distances[:, 1:].mean(axis=1)  # column 0 is the peak itself
        self.radius = np.zeros(int(self.labels.max()) + 1 if len(self.labels) else 1)
        for unit in np.unique(self.labels):
            self.radius[unit] = np.quantile(spread[self.labels == unit], ASSIGN_QUANTILE)

    def assign(self, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
        out = labels.copy()
        outliers = np.flatnonzero(labels < 0)
        if len(outliers) == 0 or len(self.labels) <= self.k:
            return out
        distances, index = self.neighbours.kneighbors(features[outliers], n_neighbors=self.k)
        votes = self.labels[index]
        unit = np.array([np.bincount(row).argmax() for row in votes])
        share = (votes == unit[:, None]).mean(axis=1)
        ok = (share >= ASSIGN_AGREEMENT) & (distances.mean(axis=1) <= ASSIGN_RADIUS_FACTOR * self.radius[unit])
        out[outliers[ok]] = unit[ok]
        return out


EMBEDDING_CHUNK = 50_000  # peaks embedded and assigned at a time: memory stays flat on long recordings


def label_all_peaks(trained: DeepClusterResult, store: SnippetStore, *, position_weight: float, min_cluster_size: int,
                    small_unit_size: int, assign_outliers: bool, batch_size: int, noise_seed: int | None,
                    device) -> tuple[np.ndarray, int]:
    """Fit units on the training peaks, then assign every other peak chunk by chunk (-1 = outlier); with
    ``assign_outliers``, HDBSCAN's outliers that sit among one unit's peaks join it (``OutlierAssigner``).
    Returns the labels and the first label of the units the second pass formed (``small_unit_size``;
    one past the last label when it formed none): those hold training peaks only.

    After ``run_isosplit_rounds`` (``trained.labels`` set) its clusters are the training peaks' units and
    the other peaks take the label of their nearest training peaks (``propagate_labels``)."""
    train_embedding = trained.embedding
    if train_embedding is None:
        train_embedding = embed_snippets(trained.model, store, trained.train_indices, batch_size, device,
                                         noise_seed=noise_seed)
    train_locations = store.locations[trained.train_indices]
    if trained.labels is not None:
        reference = (train_embedding, train_locations)
        train_features = isosplit_features(train_embedding, train_locations)
        finder, train_labels = None, trained.labels
        first_small_label = int(train_labels.max()) + 1
    else:
        finder, train_labels = fit_units(train_embedding, train_locations, position_weight=position_weight,
                                         min_cluster_size=min_cluster_size, small_unit_size=small_unit_size)
        first_small_label = int(finder.clusterer.labels_.max()) + 1
    assigner = None
    if finder is not None and assign_outliers:
        train_features = finder.features(train_embedding, train_locations)
        assigner = OutlierAssigner(train_features, train_labels)
        train_labels = assigner.assign(train_features, train_labels)
    labels = np.full(len(store), -1, dtype=np.int64)
    labels[trained.train_indices] = train_labels
    others = np.setdiff1d(np.arange(len(store)), trained.train_indices)
    for start in range(0, len(others), EMBEDDING_CHUNK):
        index = others[start:start + EMBEDDING_CHUNK]
        chunk_seed = None if noise_seed is None else noise_seed + 1 + start // EMBEDDING_CHUNK
        embedding = embed_snippets(trained.model, store, index, batch_size, device, noise_seed=chunk_seed)
        if finder is None:
            labels[index] = propagate_labels(train_features, train_labels,
                                             isosplit_features(embedding, store.locations[index], reference))
        else:
            labels[index] = finder.predict(embedding, store.locations[index])
            if assigner is not None:
                labels[index] = assigner.assign(finder.features(embedding, store.locations[index]), labels[index])
    return labels, first_small_label

ISOSPLIT_MIN_CLUSTER = 10  # SpikeInterface's iterative-isosplit default: a 0.3-Hz unit's 27 spikes still form one
ISOSPLIT_POSITION_UM = 20.0  # about the contact pitch: one pitch weighs like one embedding standard deviation
ISOSPLIT_MERGE_DIMENSIONS = 6  # the embedding's principal components the merges see (iterative-isosplit's 6)


def isosplit_features(embedding: np.ndarray, locations: np.ndarray, reference: tuple | None = None) -> np.ndarray:
    """The standardised embedding (one global scale) beside the peak's position in contact pitches;
    ``reference``: the (embedding, locations) whose centre and scale are used (default: these)."""
    ref_embedding, ref_locations = (embedding, locations) if reference is None else reference
    shape = (embedding - ref_embedding.mean(axis=0)) / (float(ref_embedding.std()) or 1.0)
    # A coordinate that does not vary (x on a single-column probe) would make ISO-SPLIT's covariances singular.
    varies = np.ptp(ref_locations, axis=0) > 1e-3
    position = (locations - np.median(ref_locations, axis=0))[:, varies] / ISOSPLIT_POSITION_UM
    return np.hstack([shape, position]).astype(np.float64)


def merge_features(embedding: np.ndarray, locations: np.ndarray, seed: int) -> np.ndarray:
    """What the merges compare: the first ISOSPLIT_MERGE_DIMENSIONS principal components of the standardised
    embedding beside the position (few dimensions: ISO-SPLIT inverts each cluster's covariance, and a
    cluster of ISOSPLIT_MIN_CLUSTER peaks has a full-rank one only in few dimensions)."""
    features = isosplit_features(embedding, locations)
    shape, position = features[:, :embedding.shape[1]], features[:, embedding.shape[1]:]
    n_components = min(ISOSPLIT_MERGE_DIMENSIONS, shape.shape[1], max(len(shape) - 1, 1))
    return np.hstack([PCA(n_components=n_components, random_state=seed).fit_transform(shape), position])


def merge_clusters(features: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """ISO-SPLIT started from ``labels`` (-1: left out): pairs of neighbouring clusters are merged, or their
    boundary redrawn, where the isocut test on their projection finds no dip; clusters under
    ISOSPLIT_MIN_CLUSTER become -1."""
    from spikeinterface.sortingcomponents.clustering.isosplit_isocut import isosplit

    out = drop_small_clusters(labels)
    kept = np.flatnonzero(out >= 0)
    if len(np.unique(out[kept])) > 1:
        out[kept] = isosplit(features[kept], initial_labels=out[kept], min_cluster_size=ISOSPLIT_MIN_CLUSTER,
                             isocut_threshold=2.0, seed=seed)
    return drop_small_clusters(out)


def drop_small_clusters(labels: np.ndarray) -> np.ndarray:
    """Clusters under ISOSPLIT_MIN_CLUSTER peaks become -1; the others are renumbered 0, 1, ..."""
    out = np.asarray(labels, dtype=np.int64).copy()
    kept = np.flatnonzero(out >= 0)
    sizes = np.bincount(out[kept], minlength=1)
    out[kept[sizes[out[kept]] < ISOSPLIT_MIN_CLUSTER]] = -1
    kept = np.flatnonzero(out >= 0)
    _, out[kept] = np.unique(out[kept], return_inverse=True)
    return out


def run_isosplit_rounds(store: SnippetStore, *, folder, num_channels: int, max_training_peaks: int, embedding_dim: int,
                        max_rounds: int, steps_per_round: int, nmi_stop: float, batch_size: int, learning_rate: float,
                        stochastic_embedding: bool, augment: bool, device, seed: int,
                        initial_labels: np.ndarray, progress: bool = True, **_unused) -> DeepClusterResult:
    """DeepCluster whose clustering step is ISO-SPLIT (``pseudo_labels="isosplit"``): train the CNN on the
    current clusters, embed, merge the clusters with ISO-SPLIT on the embedding and the positions
    (``merge_clusters``); the last round's clusters are the units. ``initial_labels`` (one per peak of
    ``store``, -1: none; ``spikeinterface_clustering_labels``) are round 0's clusters. Single process, no
    resume: a resumed sort reruns this stage."""
    train_indices = choose_training_peaks(len(store), max_training_peaks, np.random.default_rng(seed))
    labels = drop_small_clusters(np.asarray(initial_labels)[train_indices])
    torch.manual_seed(seed)
    model = SnippetClassifier(SnippetEncoder(in_channels=store.n_channels, n_samples=store.n_samples,
                                             embedding_dim=embedding_dim), max(int(labels.max()) + 1, 2)).to(device)
    noise_seed = embedding_noise_seed(stochastic_embedding, seed)
    locations = store.locations[train_indices]
    history, round_labels, embedding = [], [labels], None
    for round_index in range(max_rounds):
        t0 = time.perf_counter()
        torch.manual_seed(seed * 1000 + round_index)
        labelled = np.flatnonzero(labels >= 0)
        k = max(int(labels.max()) + 1, 2)
        train_set = SnippetDataset(store.snippets, store.scale, indices=train_indices[labelled], augment=augment,
                                   seed=seed)
        trained = _train_round(model, train_set, labels[labelled], k, steps_per_round=steps_per_round,
                               batch_size=batch_size, learning_rate=learning_rate, device=device, seed=seed,
                               round_index=round_index, progress=progress)
        embedding = embed_training_peaks(model, store, train_indices, batch_size, device, noise_seed)
        new = merge_clusters(merge_features(embedding, locations, seed), labels, seed + round_index)
        both = (labels >= 0) & (new >= 0)
        nmi = float(normalized_mutual_info_score(labels[both], new[both])) if both.any() else 0.0
        history.append({"round": round_index + 1, "n_clusters": k, "train_loss": trained.history[-1]["train_loss"],
                        "train_accuracy": trained.history[-1]["train_accuracy"], "nmi": nmi,
                        "seconds": time.perf_counter() - t0})
        labels = new
        round_labels.append(labels)
        if nmi >= nmi_stop:
            break
    return DeepClusterResult(model, train_indices, history, embedding, labels=labels, round_labels=round_labels)


def propagate_labels(train_features: np.ndarray, train_labels: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Labels of peaks outside the training subsample: the majority of their 5 nearest training peaks in
    ISO-SPLIT's features (-1 included, so outliers stay outliers)."""
    neighbours = KNeighborsClassifier(n_neighbors=min(5, len(train_labels))).fit(train_features, train_labels)
    return neighbours.predict(features).astype(np.int64)


def spikeinterface_clustering_labels(recording, peaks: np.ndarray, noise_levels: np.ndarray | None, *, method: str,
                                     seed: int, job_kwargs: dict | None = None) -> np.ndarray:
    """SpikeInterface's own clustering ``method`` ("iterative-isosplit", "iterative-hdbscan") of the peaks, with its
    default settings (its own SVD features, splits and template merges): one label per peak (-1: none). It is the
    ``clustering`` beside DeepCluster, and round 0 of ``pseudo_labels="isosplit"``."""
    from spikeinterface.sortingcomponents.clustering import find_clusters_from_peaks

    _, labels = find_clusters_from_peaks(recording, peaks, method=method,
                                         method_kwargs=dict(noise_levels=noise_levels, seed=seed, verbose=False),
                                         job_kwargs=dict(job_kwargs or {}))[:2]
    return np.asarray(labels, dtype=np.int64)

