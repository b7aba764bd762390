"""Stage 5: units from the learned embedding, their number found from the data.

HDBSCAN on the reduced embedding plus the peak's position decides how many units there
are and marks outlier peaks (label -1). It is fitted on the training subsample; every
other peak is embedded in chunks and assigned with HDBSCAN's ``approximate_predict``,
so memory stays flat however many peaks a long recording has.
"""

from __future__ import annotations

from dataclasses import dataclass

import hdbscan
import numpy as np
from sklearn.decomposition import PCA

from .deepcluster import position_features


@dataclass
class UnitFinder:
    pca: PCA
    clusterer: hdbscan.HDBSCAN
    location_centre: np.ndarray
    position_weight: float

    def features(self, embedding: np.ndarray, locations: np.ndarray) -> np.ndarray:
        reduced = self.pca.transform(embedding)
        reduced /= np.maximum(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-8)
        positions = (np.asarray(locations, np.float32) - self.location_centre) * (self.position_weight / 40.0)
        return np.concatenate([reduced, positions], axis=1).astype(np.float64)

    def predict(self, embedding: np.ndarray, locations: np.ndarray) -> np.ndarray:
        if len(embedding) == 0:
            return np.zeros(0, dtype=np.int64)
        labels, _ = hdbscan.approximate_predict(self.clusterer, self.features(embedding, locations))
        return labels.astype(np.int64)


def fit_units(embedding: np.ndarray, locations: np.ndarray, params: dict, seed: int) -> tuple[UnitFinder, np.ndarray]:
    """Fit the unit finder on the training peaks; return it and their labels (-1 = outlier)."""
    n_components = int(min(10, embedding.shape[1], max(len(embedding) - 1, 1)))
    pca = PCA(n_components=n_components, whiten=True, random_state=seed).fit(embedding)
    finder = UnitFinder(pca, None, np.median(locations, axis=0).astype(np.float32), params["position_weight"])
    features = finder.features(embedding, locations)
    min_size = int(max(params["min_cluster_size"], len(embedding) // 2000))
    finder.clusterer = hdbscan.HDBSCAN(
        min_cluster_size=min_size,
        min_samples=max(min_size // 2, 5),
        cluster_selection_method="leaf",
        prediction_data=True,
        core_dist_n_jobs=1,
    ).fit(features)
    return finder, finder.clusterer.labels_.astype(np.int64)
