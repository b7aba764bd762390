"""DeepSpikeSort's clustering as a SpikeInterface clustering method ("deepcluster").

Registered in ``sortingcomponents.clustering.method_list.clustering_methods`` on import,
so ``find_clusters_from_peaks(recording, peaks, method="deepcluster")`` and SpikeInterface's
``ClusteringStudy`` can run it beside the built-in methods. It runs stages 3 to 5 of the
sorter (snippets, DeepCluster, units) on the given (already preprocessed) recording.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from .params import SORTER_PARAMS

_STAGE_PARAMS = [
    "snippet_ms_before", "snippet_ms_after", "snippet_radius_um", "max_snippet_channels", "max_training_peaks",
    "embedding_dim", "cluster_factor", "max_rounds", "steps_per_round", "nmi_stop", "batch_size", "learning_rate",
    "stochastic_embedding", "augment", "position_weight", "min_cluster_size", "device", "torch_threads", "seed",
]


class DeepClusterClustering:
    """DeepCluster-trained CNN embedding of the peaks' snippets, then HDBSCAN with the peaks' positions."""

    name = "deepcluster"
    _default_params = {name: SORTER_PARAMS.params[name].default for name in _STAGE_PARAMS} | {"folder": None}
    params_doc = "\n".join(
        f"    {name}: {SORTER_PARAMS.params[name].description}" for name in _STAGE_PARAMS
    ) + "\n    folder: where snippets and the model are written (a temporary folder, removed after, if None)"

    @classmethod
    def main_function(cls, recording, peaks, params, job_kwargs=dict()):
        from .deepcluster import run_deepcluster
        from .pipeline import label_all_peaks
        from .snippets import extract_snippets
        from .torch_utils import resolve_device, seed_everything, torch_threads

        settings = SORTER_PARAMS.validate({k: v for k, v in params.items() if k in _STAGE_PARAMS})
        folder = Path(params["folder"]) if params.get("folder") else Path(tempfile.mkdtemp(prefix="deepcluster_"))
        seed = settings["seed"] if settings["seed"] is not None else 0
        seed_everything(seed)
        device = resolve_device(settings["device"])
        try:
            store = extract_snippets(
                recording, peaks, folder / "snippets", settings["snippet_ms_before"], settings["snippet_ms_after"],
                settings["snippet_radius_um"], settings["max_snippet_channels"], job_kwargs,
            )
            with torch_threads(settings["torch_threads"]):
                trained = run_deepcluster(store, recording.get_num_channels(), settings, folder / "deepcluster", device,
                                          seed, progress=bool(params.get("verbose", False)))
                peak_labels = label_all_peaks(trained, store, settings, device, seed)
        finally:
            if not params.get("folder"):
                shutil.rmtree(folder, ignore_errors=True)
        return np.unique(peak_labels[peak_labels >= 0]), peak_labels
