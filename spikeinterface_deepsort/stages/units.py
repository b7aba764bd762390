"""Stage 5: units from the learned embedding, their number found from the data.

HDBSCAN on the standardised embedding plus the peak's position decides how many units
there are and marks outlier peaks (label -1). It is fitted on the training subsample;
every other peak is embedded in chunks and assigned with HDBSCAN's
``approximate_predict``, so memory stays flat however many peaks a long recording has.
"""

from __future__ import annotations

from dataclasses import dataclass

import hdbscan
import numpy as np

from .deepcluster import DeepClusterResult, embed_snippets
from .snippets import SnippetStore

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


def fit_units(embedding: np.ndarray, locations: np.ndarray, *, position_weight: float,
              min_cluster_size: int) -> tuple[UnitFinder, np.ndarray]:
    """Fit the unit finder on the training peaks; return it and their labels (-1 = outlier)."""
    finder = UnitFinder(
        embedding_mean=embedding.mean(axis=0),
        embedding_scale=float(embedding.std()) or 1.0,
        location_centre=np.median(locations, axis=0).astype(np.float32),
        position_weight=position_weight,
    )
    min_size = int(min_cluster_size)
    finder.clusterer = hdbscan.HDBSCAN(
        min_cluster_size=min_size,
        min_samples=min(10, min_size),
        # "leaf" keeps the finest stable clusters: close units stay apart, and over-split ones are
        # merged by curation (docs/deepcluster.md compares it with "eom").
        cluster_selection_method="leaf",
        core_dist_n_jobs=1,
    ).fit(finder.features(embedding, locations))
    return finder, finder.clusterer.labels_.astype(np.int64)


EMBEDDING_CHUNK = 50_000  # peaks embedded and assigned at a time: memory stays flat on long recordings


def label_all_peaks(trained: DeepClusterResult, store: SnippetStore, *, position_weight: float, min_cluster_size: int,
                    batch_size: int, noise_seed: int | None, device) -> np.ndarray:
    """Fit units on the training peaks, then assign every other peak chunk by chunk (-1 = outlier)."""
    train_embedding = trained.embedding
    if train_embedding is None:
        train_embedding = embed_snippets(trained.model, store, trained.train_indices, batch_size, device,
                                         noise_seed=noise_seed)
    finder, train_labels = fit_units(train_embedding, store.locations[trained.train_indices],
                                     position_weight=position_weight, min_cluster_size=min_cluster_size)
    labels = np.full(len(store), -1, dtype=np.int64)
    labels[trained.train_indices] = train_labels
    others = np.setdiff1d(np.arange(len(store)), trained.train_indices)
    for start in range(0, len(others), EMBEDDING_CHUNK):
        index = others[start:start + EMBEDDING_CHUNK]
        chunk_seed = None if noise_seed is None else noise_seed + 1 + start // EMBEDDING_CHUNK
        embedding = embed_snippets(trained.model, store, index, batch_size, device, noise_seed=chunk_seed)
        labels[index] = finder.predict(embedding, store.locations[index])
    return labels
