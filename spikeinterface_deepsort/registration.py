"""Registration with SpikeInterface, done once on import.

SpikeInterface has no plugin entry point for sorters: ``run_sorter`` looks names up in
``sorterlist.sorter_dict`` and ``installed_sorters`` walks ``sorter_full_list``, so the
class is added to both. The clustering stage is also added to SpikeInterface's
clustering methods, where ``find_clusters_from_peaks`` and ``ClusteringStudy`` look.

``run_sorter_jobs(engine="joblib")`` runs jobs in joblib's loky workers, fresh interpreters
that never import this package, so they do not know "deepspikesort". A loky backend whose
workers import the package when they start is registered with joblib as
``JOBLIB_BACKEND``: pass ``engine_kwargs=dict(n_jobs=N, backend="loky-deepspikesort")``.
"""

from __future__ import annotations

import functools
import importlib

JOBLIB_BACKEND = "loky-deepspikesort"


def register() -> None:
    from spikeinterface.sorters import sorterlist

    from .sorter import DeepSpikeSortSorter

    if DeepSpikeSortSorter not in sorterlist.sorter_full_list:
        sorterlist.sorter_full_list.append(DeepSpikeSortSorter)
    sorterlist.sorter_dict[DeepSpikeSortSorter.sorter_name] = DeepSpikeSortSorter

    from spikeinterface.sortingcomponents.clustering.method_list import clustering_methods

    from .clustering_method import DeepClusterClustering

    clustering_methods[DeepClusterClustering.name] = DeepClusterClustering

    from joblib import register_parallel_backend
    from joblib.parallel import LokyBackend

    register_parallel_backend(JOBLIB_BACKEND, functools.partial(
        LokyBackend, initializer=importlib.import_module, initargs=("spikeinterface_deepsort",)))
