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

from ..params import SORTER_PARAMS

_GROUPS = ("snippets", "deepcluster", "units")
_STAGE_PARAMS = [name for name, p in SORTER_PARAMS.params.items() if p.group in _GROUPS] + [
    "device", "torch_threads", "seed"]


class DeepClusterClustering:
    """DeepCluster-trained CNN embedding of the peaks' snippets, then HDBSCAN with the peaks' positions."""

    name = "deepcluster"
    _default_params = {name: SORTER_PARAMS.params[name].default for name in _STAGE_PARAMS} | {"folder": None}
    params_doc = "\n".join(
        f"    {name}: {SORTER_PARAMS.params[name].description}" for name in _STAGE_PARAMS
    ) + "\n    folder: where snippets and the model are written (a temporary folder, removed after, if None)"

    @classmethod
    def main_function(cls, recording, peaks, params, job_kwargs=dict()):
        from ..learning.torch_utils import seed_everything, torch_threads
        from ..settings import resolve_device, resolve_seed
        from ..stages.deepcluster import embedding_noise_seed, run_deepcluster
        from ..stages.snippets import extract_snippets
        from ..stages.units import label_all_peaks

        p = SORTER_PARAMS.validate({k: v for k, v in params.items() if k in _STAGE_PARAMS})
        folder = Path(params["folder"]) if params.get("folder") else Path(tempfile.mkdtemp(prefix="deepcluster_"))
        seed, device = resolve_seed(p["seed"], saved=0), resolve_device(p["device"])
        seed_everything(seed)
        try:
            store = extract_snippets(recording, peaks, folder / "snippets", ms_before=p["snippet_ms_before"],
                                     ms_after=p["snippet_ms_after"], radius_um=p["snippet_radius_um"],
                                     max_channels=p["max_snippet_channels"], job_kwargs=job_kwargs)
            with torch_threads(p["torch_threads"]):
                trained = run_deepcluster(store, **SORTER_PARAMS.group(p, "deepcluster"), folder=folder / "deepcluster",
                                          num_channels=recording.get_num_channels(), device=device, seed=seed,
                                          progress=bool(params.get("verbose", False)))
                peak_labels = label_all_peaks(trained, store, **SORTER_PARAMS.group(p, "units"),
                                              batch_size=p["batch_size"], device=device,
                                              noise_seed=embedding_noise_seed(p["stochastic_embedding"], seed))
        finally:
            if not params.get("folder"):
                shutil.rmtree(folder, ignore_errors=True)
        return np.unique(peak_labels[peak_labels >= 0]), peak_labels
