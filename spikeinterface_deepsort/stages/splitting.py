"""Stage 5b (``local_split``): each unit split again on the channels around it.

HDBSCAN on the learned embedding sees every unit of the probe at once. A small unit beside a large one
on the same channels can share its cluster there (the k-means pseudo-labels gave both one class, so the
network learned to map them together). Seen alone, on the SVD features of its own channels, such a
unit comes apart. This is SpikeInterface's local split, the recursive step of its iterative-hdbscan
clustering, started from our units instead of one cluster per channel; its settings are that method's
defaults. Over-split pieces of one neuron are merged again by curation (stage 6).
"""

from __future__ import annotations

import numpy as np

SVD_COMPONENTS = 5  # iterative-hdbscan's peaks_svd defaults
SVD_MS_BEFORE = 0.5
SVD_MS_AFTER = 1.5
SVD_RADIUS_UM = 100.0
SPLIT_RADIUS_UM = 75.0  # the channels a unit's peaks must share to be compared
SPLIT_MIN_CLUSTER = 20  # HDBSCAN's min_cluster_size inside a unit
SPLIT_DEPTH = 3  # recursion levels


def split_units_locally(recording, peaks: np.ndarray, labels: np.ndarray, first_small_label: int, *, seed: int,
                        job_kwargs: dict) -> tuple[np.ndarray, int]:
    """Labels where each unit formed by the first HDBSCAN pass (labels below ``first_small_label``) may be
    split in several; outliers (-1) stay outliers, and so may some peaks of a split unit. Returns the labels
    (first-pass units and their pieces first, then the second pass's units) and the new first label of the
    second pass's units."""
    from spikeinterface.core.recording_tools import get_channel_distances
    from spikeinterface.sortingcomponents.clustering.itersplit_tools import split_clusters
    from spikeinterface.sortingcomponents.waveforms.peak_svd import extract_peaks_svd

    first = np.where((labels >= 0) & (labels < first_small_label), labels, -1)
    if not np.any(first >= 0):
        return labels, first_small_label
    svd, sparse_mask, _ = extract_peaks_svd(recording, peaks, n_components=SVD_COMPONENTS, ms_before=SVD_MS_BEFORE,
                                           ms_after=SVD_MS_AFTER, radius_um=SVD_RADIUS_UM, seed=seed,
                                           job_kwargs=job_kwargs)
    method_kwargs = dict(clusterer=dict(method="hdbscan", min_cluster_size=SPLIT_MIN_CLUSTER, allow_single_cluster=True),
                         n_pca_features=3, seed=seed, waveforms_sparse_mask=sparse_mask,
                         neighbours_mask=get_channel_distances(recording) <= SPLIT_RADIUS_UM,
                         min_size_split=2 * SPLIT_MIN_CLUSTER)
    split = split_clusters(first, recording, {"peaks": peaks, "sparse_tsvd": svd}, method="local_feature_clustering",
                           method_kwargs=method_kwargs, recursive=True, recursive_depth=SPLIT_DEPTH,
                           job_kwargs=job_kwargs)
    out = np.full(len(labels), -1, dtype=np.int64)
    kept = split >= 0  # the split marks peaks without the shared channels -2: outliers here
    _, out[kept] = np.unique(split[kept], return_inverse=True)
    new_first_small = int(out.max()) + 1 if kept.any() else 0
    small = labels >= first_small_label
    out[small] = labels[small] - first_small_label + new_first_small
    return out, new_first_small
