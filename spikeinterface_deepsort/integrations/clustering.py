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

_GROUPS = ("snippets", "deepcluster", "units", "splitting", "curation")
_TEMPLATE_PARAMS = ["template_ms_before", "template_ms_after", "template_radius_um", "min_template_snr"]
_STAGE_PARAMS = [name for name, p in SORTER_PARAMS.params.items() if p.group in _GROUPS] + _TEMPLATE_PARAMS + [
    "exclude_sweep_ms", "device", "torch_threads", "seed"]


class DeepClusterClustering:
    """DeepCluster-trained CNN embedding of the peaks' snippets, then HDBSCAN with the peaks' positions."""

    name = "deepcluster"
    _default_params = {name: SORTER_PARAMS.params[name].default for name in _STAGE_PARAMS} | {
        "curate": True, "folder": None, "noise_levels": None, "initial_labels": None}
    params_doc = "\n".join(
        f"    {name}: {SORTER_PARAMS.params[name].description}" for name in _STAGE_PARAMS
    ) + ("\n    curate: the sorter's curation last (stage 6: the second pass's fragments dropped, over-split units "
         "merged by template and refractory period), as SpikeInterface's methods end with their own template merges; "
         "False returns HDBSCAN's units as they are"
         "\n    folder: where snippets and the model are written (a temporary folder, removed after, if None)"
         "\n    noise_levels: the recording's noise levels, for pseudo_labels='isosplit' (estimated if None)"
         "\n    initial_labels: pseudo_labels='isosplit' starts from these labels of the peaks (-1: none) instead of "
         "running iterative-isosplit")

    @classmethod
    def main_function(cls, recording, peaks, params, job_kwargs=dict()):
        from ..learning.torch_utils import cpu_threads, seed_everything
        from ..settings import resolve_device, resolve_seed
        from ..stages.deepcluster import embedding_noise_seed, run_deepcluster
        from ..stages.snippets import extract_snippets
        from ..stages.splitting import split_units_locally
        from ..stages.units import label_all_peaks, run_isosplit_rounds, spikeinterface_clustering_labels

        p = SORTER_PARAMS.validate({k: v for k, v in params.items() if k in _STAGE_PARAMS})
        folder = Path(params["folder"]) if params.get("folder") else Path(tempfile.mkdtemp(prefix="deepcluster_"))
        seed, device = resolve_seed(p["seed"]), resolve_device(p["device"])
        seed_everything(seed)
        try:
            store = extract_snippets(recording, peaks, folder / "snippets", ms_before=p["snippet_ms_before"],
                                     ms_after=p["snippet_ms_after"], radius_um=p["snippet_radius_um"],
                                     max_channels=p["max_snippet_channels"], job_kwargs=job_kwargs)
            extra = {}
            if p["pseudo_labels"] == "isosplit":
                runner = run_isosplit_rounds
                extra["initial_labels"] = params.get("initial_labels")
                if extra["initial_labels"] is None:
                    extra["initial_labels"] = spikeinterface_clustering_labels(
                        recording, peaks, params.get("noise_levels"), method="iterative-isosplit", seed=seed,
                        job_kwargs=job_kwargs)
            else:
                runner = run_deepcluster
            with cpu_threads(p["torch_threads"]):
                trained = runner(store, **SORTER_PARAMS.group(p, "deepcluster"), folder=folder / "deepcluster",
                                 num_channels=recording.get_num_channels(), device=device, seed=seed,
                                 progress=bool(params.get("verbose", False)), **extra)
                peak_labels, first_small_label = label_all_peaks(trained, store, **SORTER_PARAMS.group(p, "units"),
                                              batch_size=p["batch_size"], device=device,
                                              noise_seed=embedding_noise_seed(p["stochastic_embedding"], seed))
        finally:
            if not params.get("folder"):
                shutil.rmtree(folder, ignore_errors=True)
        # Every round's clusters of all peaks (-1: none; peaks outside the training subsample are -1), for
        # per-round scores: find_clusters_from_peaks(..., extra_outputs=True).
        rounds = []
        for round_labels in trained.round_labels:
            full = np.full(len(peak_labels), -1, dtype=np.int64)
            full[trained.train_indices] = round_labels
            rounds.append(full)
        if p["local_split"]:
            peak_labels, first_small_label = split_units_locally(recording, peaks, peak_labels, first_small_label,
                                                                 seed=seed, job_kwargs=job_kwargs)
        if params.get("curate", True):
            peak_labels = _curated(recording, peaks, peak_labels, first_small_label, params.get("noise_levels"), p,
                                   seed, job_kwargs)
        return np.unique(peak_labels[peak_labels >= 0]), peak_labels, {"round_labels": rounds}


def _curated(recording, peaks, peak_labels, first_small_label, noise_levels, p: dict, seed: int,
             job_kwargs: dict) -> np.ndarray:
    """The sorter's stage 6 on these labels (see ``curate`` in the method's parameters)."""
    from ..stages.curation import curate_units
    from ..stages.detection import estimate_noise_levels
    from ..stages.matching import estimate_templates

    if not np.any(peak_labels >= 0):
        return peak_labels
    if noise_levels is None:
        noise_levels = estimate_noise_levels(recording, seed=seed, job_kwargs=job_kwargs)
    templates = estimate_templates(recording, peaks, peak_labels, noise_levels,
                                   **{name: p[name] for name in _TEMPLATE_PARAMS}, job_kwargs=job_kwargs)
    return curate_units(templates, peaks, peak_labels, noise_levels, first_small_label=int(first_small_label),
                        max_template_diff=p["merge_max_template_diff"], total_samples=recording.get_total_samples(),
                        dead_time_ms=p["exclude_sweep_ms"])
