"""Do the learned features earn their place? The clustering stage alone, feature by feature.

On the 32-channel reference case, the same detected peaks and snippets are turned into
units (HDBSCAN, as the sorter does) from different features, and each labelling of the
detected peaks is scored against ground truth (clustering-only accuracy, before template
matching), beside the ceiling a perfect clustering of the same peaks reaches:

  pca                   principal components of the raw snippets (what most peers use)
  pca + position        ... and the peak's position on the probe
  deepcluster           the sorter's default: the CNN trained on k-means labels of the PCA features
  deepcluster, up to 6 rounds   re-clustering its own embedding until the assignments settle
  deepcluster, no position
  deepcluster, no augmentation
  deepcluster, deterministic embedding   without the dropout noise of stochastic_embedding

    python benchmarks/features.py

Writes benchmarks/results/features.md and .json.
"""

from __future__ import annotations

import shutil
import sys
import time

import numpy as np
import torch

import _common
from _common import (MATCH_DELTA_MS, SORTER_PARAMS, cpu_threads, detect, embed_snippets, embedding_noise_seed,
                     estimate_noise_levels, extract_snippets, fit_units, label_peaks_with_truth, peaks_sorting,
                     preprocess, raw_pca_features, run_deepcluster)

WORK = _common.WORK / "features"


def units_from(features: np.ndarray, store, params: dict) -> np.ndarray:
    """The sorter's unit finder (HDBSCAN on standardised features + position) on all peaks."""
    _, labels = fit_units(features, store.locations, position_weight=params["position_weight"],
                          min_cluster_size=params["min_cluster_size"])
    return labels


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    recording, gt = _common.ground_truth_recording()
    params = SORTER_PARAMS.defaults()
    job_kwargs = dict(n_jobs=2, progress_bar=False)
    group = SORTER_PARAMS.group
    chain = {k: v for k, v in group(params, "preprocessing").items() if k != "cache_preprocessing"}
    rec = preprocess(recording, **chain, seed=0, motion_folder=WORK / "motion", job_kwargs=job_kwargs)
    peaks = detect(rec, estimate_noise_levels(rec, seed=0, job_kwargs=job_kwargs), **group(params, "detection"),
                   prototype_ms_before=params["snippet_ms_before"], prototype_ms_after=params["snippet_ms_after"],
                   seed=0, job_kwargs=job_kwargs)
    store = extract_snippets(rec, peaks, WORK / "snippets", params["snippet_ms_before"], params["snippet_ms_after"],
                             params["snippet_radius_um"], params["max_snippet_channels"], job_kwargs)
    fs = recording.get_sampling_frequency()
    score = lambda labels: _common.ground_truth_summary(gt=gt, sorting=peaks_sorting(peaks, labels, fs))  # noqa: E731
    everything = np.arange(len(store))
    rows = {"perfect clustering (ceiling)": score(label_peaks_with_truth(peaks, gt, int(MATCH_DELTA_MS / 1000 * fs)))}

    pca = raw_pca_features(store, everything, seed=0)
    rows["pca"] = score(units_from(pca, store, dict(params, position_weight=0.0)))
    rows["pca + position"] = score(units_from(pca, store, params))
    variants = {
        "deepcluster + position (default)": {},
        "deepcluster + position, up to 6 rounds": dict(max_rounds=6),
        "deepcluster, no position": dict(position_weight=0.0),
        "deepcluster + position, no augmentation": dict(augment=False),
        "deepcluster + position, deterministic embedding": dict(stochastic_embedding=False),
    }
    with cpu_threads(params["torch_threads"]):
        for name, change in variants.items():
            settings = dict(params, **change)
            t0 = time.perf_counter()
            trained = run_deepcluster(store, **SORTER_PARAMS.group(settings, "deepcluster"),
                                      folder=WORK / name.replace(" ", "_"), num_channels=rec.get_num_channels(),
                                      device=torch.device("cpu"), seed=0, progress=False)
            # Embedded as the sorter does (with its dropout noise unless switched off).
            embedding = embed_snippets(trained.model, store, everything, settings["batch_size"], torch.device("cpu"),
                                       noise_seed=embedding_noise_seed(settings["stochastic_embedding"], 0))
            rows[name] = score(units_from(embedding, store, settings)) | {
                "rounds": len(trained.history), "deepcluster_seconds": round(time.perf_counter() - t0, 1)}
            print(name, rows[name], flush=True)

    lines = ["# Clustering stage alone: which features separate units (32-channel reference case)", "",
             "Command: `python benchmarks/features.py`", "",
             f"{len(peaks)} detected peaks; each labelling of them is scored against ground truth before template "
             "matching (the sorter then recovers overlapping spikes by matching).", "",
             "| features | units | clustering-only accuracy | well detected (>0.8) | DeepCluster rounds | DeepCluster s |",
             "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['units']} | {row['accuracy']} | {row['well_detected']}/20 | "
                     f"{row.get('rounds', '')} | {row.get('deepcluster_seconds', '')} |")
    text = "\n".join(lines)
    print(text)
    _common.write_results("features", rows, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
