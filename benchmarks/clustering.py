"""The clustering stage side by side on the same peaks (issue 17, item 2).

On each draw of benchmarks/draws.py: preprocess with SpikeInterface (bandpass 300-6000 Hz,
global common median reference where there are >= 8 channels, local whitening within 100 um;
no motion correction, also on drift draws), save the result once, detect peaks once
(``locally_exclusive``, 5 MAD, 100 um), then label those same peaks with each method:

  deepcluster          this package's clustering method, its defaults (find_clusters_from_peaks): the learned
                       embedding, HDBSCAN, its outliers assigned, the sorter's curation
  deepcluster-pca      the same method with features="pca": the raw snippets' principal components in place
                       of the learned embedding, every other step the same (what the network adds)
  deepcluster-uncurated  the method as it was before session 17: HDBSCAN's units as they are (curate=False,
                       assign_outliers=False, local_split=False)
  iterative-hdbscan    spykingcircus2's clustering method in SpikeInterface 0.105.3
  iterative-isosplit   lupin's and tridesclous2's (both call it, with their own settings of its
                       window and radii; here with the method's defaults, as the others)
  deepcluster-isosplit this package's method with pseudo_labels="isosplit" and max_rounds=2: iterative-isosplit's
                       clusters, then rounds of train the CNN on them -> embed -> merge them with
                       ISO-SPLIT on the embedding and position; each round's clusters are scored too
                       ("rounds": round 0 is the clusters before any training)
  deepcluster-isosplit-4rounds  the same, 4 rounds whatever the NMI between rounds (nmi_stop=1)
  deepcluster-isosplit-nodropout  deepcluster-isosplit with the embedding taken without dropout
  deepcluster-2rounds  the default method with two k-means rounds whatever their NMI (max_rounds=2, nmi_stop=1):
                       the second round trains on k-means clusters of the first round's embedding
  pca+position+hdbscan snippets (1 ms before, 1.5 ms after) on the 8 channels nearest the peak's,
                       PCA (10 components) scaled by their overall std, beside the peak's position
                       (centre of mass, in units of 20 um), HDBSCAN (min_cluster_size 30,
                       min_samples 10, leaf selection): the sorter's unit finder on PCA instead of
                       the learned embedding (features.py's "pca + position"), written here with
                       SpikeInterface, scikit-learn and hdbscan only
  ceiling              perfect clustering: each true spike's closest peak (within 0.4 ms)
                       labelled with its unit, every other peak dropped

The SpikeInterface methods get the peaks' noise levels and seed 0; every method sees all
peaks (the sorters subsample before clustering). Each labelling is scored the same way before
any template matching: the labelled peaks as a NumpySorting against the ground truth
(GroundTruthComparison, exhaustive, 0.4 ms). Results per (draw, method) are kept in
benchmarks/work/clustering/<draw>/ and not recomputed unless named by ``--rerun``.

    python benchmarks/clustering.py [--split dev|test] [--draws NAME ...] [--methods NAME ...] [--rerun [METHOD ...]]
                                    [--seeds N]

--seeds N runs this package's methods (deepcluster and its variants) with the sorter's seeds 0..N-1 too
("deepcluster@1": seed 1) and reports the mean over the seeds: one seed decides whole units on a draw.

Writes benchmarks/results/clustering_<split>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import numpy as np

import _common
import draws as draw_family
from _common import MATCH_DELTA_MS, N_JOBS, ground_truth_summary, label_peaks_with_truth, markdown_table, peaks_sorting

WORK = _common.WORK / "clustering"
METHODS = ["deepcluster", "deepcluster-pca", "deepcluster-uncurated", "deepcluster-isosplit", "deepcluster-isosplit-4rounds",
           "deepcluster-isosplit-nodropout", "deepcluster-2rounds", "iterative-hdbscan", "iterative-isosplit",
           "pca+position+hdbscan", "ceiling"]
VARIANTS = {"deepcluster-pca": ("deepcluster", dict(features="pca")),
            "deepcluster-uncurated": ("deepcluster", dict(curate=False, assign_outliers=False, local_split=False)),
            "deepcluster-isosplit": ("deepcluster", dict(pseudo_labels="isosplit", max_rounds=2)),
            "deepcluster-isosplit-4rounds": ("deepcluster", dict(pseudo_labels="isosplit", max_rounds=4, nmi_stop=1.0)),
            "deepcluster-isosplit-nodropout": ("deepcluster", dict(pseudo_labels="isosplit", max_rounds=2,
                                                                   stochastic_embedding=False)),
            "deepcluster-2rounds": ("deepcluster", dict(max_rounds=2, nmi_stop=1.0))}
JOB_KWARGS = dict(n_jobs=N_JOBS, progress_bar=False)
SEED = 0
SEEDED = "@"  # "deepcluster@2": the method run with the sorter's seed 2 (--seeds)


def is_deepcluster(method: str) -> bool:
    return method == "deepcluster" or VARIANTS.get(method, ("",))[0] == "deepcluster"


def with_seeds(methods: list[str], seeds: int) -> list[str]:
    """``methods``, each of this package's methods followed by its runs with seeds 1..seeds-1 ("name@k"): one seed
    decides whole units, so a screen of 0.01 needs several."""
    return [name for m in methods for name in [m, *(f"{m}{SEEDED}{k}" for k in range(1, seeds) if is_deepcluster(m))]]


def seed_mean(rows: dict, method: str, seeds: int) -> dict | None:
    """Mean accuracy and well-detected units of ``method`` over its seeds on one draw (None: a run is missing)."""
    runs = [rows.get(name, {}) for name in with_seeds([method], seeds)]
    if not all("accuracy" in run for run in runs):
        return None
    return {"accuracy": round(float(np.mean([run["accuracy"] for run in runs])), 3),
            "well_detected": round(float(np.mean([run["well_detected"] for run in runs])), 1)}


def preprocess(recording, folder: Path):
    """Bandpass, common median reference (>= 8 channels: on fewer, the median is the spikes),
    local whitening; computed once into ``folder`` and read back from there by every method."""
    import spikeinterface.core as sic
    import spikeinterface.preprocessing as spre

    if (folder / "binary.json").exists() or (folder / "si_folder.json").exists():
        return sic.load(folder)
    fs = recording.get_sampling_frequency()
    rec = spre.bandpass_filter(recording, freq_min=300.0, freq_max=min(6000.0, 0.45 * fs))
    if rec.get_num_channels() >= 8:
        rec = spre.common_reference(rec, reference="global", operator="median")
    rec = spre.whiten(rec, mode="local", radius_um=100.0, dtype="float32", seed=SEED)
    shutil.rmtree(folder, ignore_errors=True)
    return rec.save(folder=folder, **JOB_KWARGS)


def detect(recording, noise_levels: np.ndarray) -> np.ndarray:
    from spikeinterface.sortingcomponents.peak_detection import detect_peaks

    return detect_peaks(recording, method="locally_exclusive",
                        method_kwargs=dict(peak_sign="neg", detect_threshold=5.0, radius_um=100.0,
                                           noise_levels=noise_levels),
                        job_kwargs=JOB_KWARGS)


def snippets_nearest_channels(recording, peaks: np.ndarray, *, ms_before: float = 1.0, ms_after: float = 1.5,
                              channels: int = 8) -> np.ndarray:
    """(peaks, samples x channels) windows on the ``channels`` contacts nearest each peak's channel,
    nearest first; peaks too close to the ends get the edge samples repeated."""
    fs = recording.get_sampling_frequency()
    before, after = int(ms_before * fs / 1000), int(ms_after * fs / 1000)
    locations = recording.get_channel_locations()
    distances = np.linalg.norm(locations[:, None] - locations[None], axis=2)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :min(channels, len(locations))]
    traces = recording.get_traces()  # the saved binary, memory-mapped
    out = np.zeros((len(peaks), before + after, nearest.shape[1]), dtype="float32")
    offsets = np.arange(-before, after)
    for channel in np.unique(peaks["channel_index"]):
        which = np.flatnonzero(peaks["channel_index"] == channel)
        rows = np.clip(peaks["sample_index"][which, None] + offsets, 0, len(traces) - 1)
        out[which] = traces[rows][:, :, nearest[channel]]
    return out.reshape(len(peaks), -1)


def pca_position_hdbscan(recording, peaks: np.ndarray) -> np.ndarray:
    import hdbscan
    from sklearn.decomposition import PCA
    from spikeinterface.sortingcomponents.peak_localization import localize_peaks

    features = PCA(n_components=10, random_state=SEED).fit_transform(snippets_nearest_channels(recording, peaks))
    # One scale for all components, so the leading ones keep their weight over the noise-like ones.
    features = (features - features.mean(axis=0)) / (features.std() or 1.0)
    locations = localize_peaks(recording, peaks, method="center_of_mass", job_kwargs=JOB_KWARGS)
    position = np.column_stack([locations["x"], locations["y"]])
    position = (position - np.median(position, axis=0)) / 20.0
    clusterer = hdbscan.HDBSCAN(min_cluster_size=30, min_samples=10, cluster_selection_method="leaf",
                                core_dist_n_jobs=N_JOBS)
    return clusterer.fit_predict(np.hstack([features, position])).astype(np.int64)


def cluster(method: str, *, recording, peaks: np.ndarray, noise_levels: np.ndarray, gt,
            start_labels: Path | None = None) -> np.ndarray | tuple:
    """The label of each peak (-1: dropped) given by ``method``; for a VARIANTS entry, (labels, every
    round's labels)."""
    from spikeinterface.sortingcomponents.clustering import find_clusters_from_peaks

    method, _, seed = method.partition(SEEDED)
    seed = int(seed or SEED)
    if method == "ceiling":
        return label_peaks_with_truth(peaks, gt, int(MATCH_DELTA_MS / 1000 * recording.get_sampling_frequency()))
    if method == "pca+position+hdbscan":
        return pca_position_hdbscan(recording, peaks)
    if method in VARIANTS:
        base, kwargs = VARIANTS[method]
        kwargs = kwargs | dict(noise_levels=noise_levels, seed=seed)
        if start_labels is not None and start_labels.exists():  # the same call's labels, computed once
            kwargs["initial_labels"] = np.load(start_labels)
        _, labels, extra = find_clusters_from_peaks(recording, peaks, method=base, method_kwargs=kwargs,
                                                    extra_outputs=True, job_kwargs=JOB_KWARGS)
        return np.asarray(labels, dtype=np.int64), extra["round_labels"]
    kwargs = dict(noise_levels=noise_levels, seed=seed)
    _, labels = find_clusters_from_peaks(recording, peaks, method=method, method_kwargs=kwargs, job_kwargs=JOB_KWARGS)
    return np.asarray(labels, dtype=np.int64)


def peaks_of(draw, recording, folder: Path):
    """(preprocessed recording, peaks, noise levels), detected once per draw and kept in ``folder``."""
    from spikeinterface.core import get_noise_levels

    preprocessed = preprocess(recording, folder / "preprocessed")
    if (folder / "peaks.npy").exists():
        return preprocessed, np.load(folder / "peaks.npy"), np.load(folder / "noise_levels.npy")
    noise_levels = get_noise_levels(preprocessed, return_in_uV=False, random_slices_kwargs=dict(seed=SEED))
    peaks = detect(preprocessed, noise_levels)
    np.save(folder / "noise_levels.npy", noise_levels)
    np.save(folder / "peaks.npy", peaks)
    return preprocessed, peaks, noise_levels


def run_draw(draw, methods: list[str], rerun: list[str]) -> dict:
    recording, gt, _ = draw_family.materialize(draw)
    folder = WORK / draw.name
    spec = json.loads(json.dumps(asdict(draw)))
    if (folder / "draw.json").exists() and json.loads((folder / "draw.json").read_text()) != spec:
        shutil.rmtree(folder)  # the draw changed: its peaks and results are stale
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "draw.json").write_text(json.dumps(spec))
    preprocessed, peaks, noise_levels = peaks_of(draw, recording, folder)
    rows = {}
    for method in methods:
        result_file = folder / f"{method}.json"
        if result_file.exists() and method not in rerun:
            rows[method] = json.loads(result_file.read_text())
            continue
        print(f"[clustering] {draw.name}: {method} on {len(peaks)} peaks ...", flush=True)
        try:
            t0 = time.perf_counter()
            labels = cluster(method, recording=preprocessed, peaks=peaks, noise_levels=noise_levels, gt=gt,
                             start_labels=folder / "iterative-isosplit_labels.npy")
            seconds = time.perf_counter() - t0
            labels, rounds = labels if isinstance(labels, tuple) else (labels, None)
            np.save(folder / f"{method}_labels.npy", labels)  # a variant that starts from a method's labels reads them
            fs = recording.get_sampling_frequency()
            rows[method] = ground_truth_summary(gt=gt, sorting=peaks_sorting(peaks, labels, fs))
            if rounds is not None:
                rows[method]["rounds"] = [{k: v for k, v in ground_truth_summary(gt=gt, sorting=peaks_sorting(
                    peaks, r, fs)).items() if k in ("accuracy", "well_detected")} for r in rounds]
            rows[method] |= {"seconds": round(seconds, 1), "labelled_peaks": int((labels >= 0).sum())}
        except Exception as error:  # a method that fails on a draw is reported, not fatal
            traceback.print_exc()
            rows[method] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
        result_file.write_text(json.dumps(rows[method], indent=2))
        print(f"[clustering] {draw.name}: {method}: {rows[method].get('error') or rows[method]['accuracy']}", flush=True)
    return {"info": draw_family.describe(draw, recording, gt), "peaks": len(peaks), "rows": rows}


def summarise(results: dict, methods: list[str], seeds: int = 1) -> dict:
    """Per method, over the draws: the median of its accuracy (mean over its seeds) and the well-detected total."""
    summary = {}
    for method in methods:
        done = [(r, mean) for r in results.values() if (mean := seed_mean(r["rows"], method, seeds)) is not None]
        summary[method] = {
            "draws": len(done),
            "median_accuracy": round(float(np.median([mean["accuracy"] for _, mean in done])), 3) if done else None,
            "well_detected": round(sum(mean["well_detected"] for _, mean in done), 1),
            "gt_units": sum(r["info"]["units"] for r, _ in done)}
    return summary


def to_markdown(results: dict, summary: dict, methods: list[str], command: str, seeds: int = 1) -> str:
    seeded = (f" This package's methods ran with seeds 0-{seeds - 1} (`name@k`: seed k): their summary and per-draw "
              "cells are the mean over the seeds." if seeds > 1 else "")
    lines = [f"# Clustering only, on the same peaks: {', '.join(results)}", "", f"Command: `{command}`", "",
             "Each method labels the same detected peaks (SpikeInterface preprocessing, `locally_exclusive` at 5 MAD); "
             "the labelled peaks are scored before any template matching (GroundTruthComparison, exhaustive). "
             "Cells: mean accuracy, well-detected units (accuracy >= 0.8)." + seeded, "", "## Summary", ""]
    lines += markdown_table(["method", "draws", "median accuracy", "well detected (total)"],
                            [[m, s["draws"], s["median_accuracy"], f"{s['well_detected']}/{s['gt_units']}"]
                             for m, s in summary.items()])
    lines += ["", "## Per draw", ""]

    def cell(rows: dict, method: str) -> str:
        mean = seed_mean(rows, method, seeds)
        return "failed or not run" if mean is None else f"{mean['accuracy']}, {mean['well_detected']:g}"

    lines += markdown_table(["draw", "units", "peaks", *methods],
                            [[name, r["info"]["units"], r["peaks"], *[cell(r["rows"], m) for m in methods]]
                             for name, r in results.items()])
    for name, result in results.items():
        info = result["info"]
        lines += ["", f"### {name}: {info['kind']}, {info['probe']}, {info['channels']} channels, {info['units']} units, "
                  f"{info['duration_s']:g} s at {info['sampling_frequency'] / 1000:g} kHz, {result['peaks']} peaks", ""]
        lines += markdown_table(
            ["method", "units", "labelled peaks", "mean accuracy", "well detected", "FP units", "redundant", "seconds"],
            [[m, "failed: " + row["error"], "", "", "", "", "", ""] if "error" in row else
             [m, row["units"], row["labelled_peaks"], row["accuracy"], f"{row['well_detected']}/{info['units']}",
              row["false_positive"], row["redundant"], row["seconds"]]
             for m, row in result["rows"].items()])
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=list(draw_family.SPLITS), default="dev")
    parser.add_argument("--draws", nargs="+", help="only these draws of the split")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    parser.add_argument("--rerun", nargs="*", choices=METHODS, metavar="METHOD",
                        help="recompute what already has a result: these methods, or all chosen ones without a name")
    parser.add_argument("--seeds", type=int, default=1,
                        help="run this package's methods with seeds 0..N-1 and report their mean (default 1)")
    args = parser.parse_args(argv)
    rerun = with_seeds([] if args.rerun is None else (args.rerun or args.methods), args.seeds)
    draw_family.check_splits()
    _common.register_package()  # registers "deepcluster" with SpikeInterface
    command = _common.command_line("clustering.py", argv)
    results = {}
    for draw in draw_family.select(args.split, args.draws):
        results[draw.name] = run_draw(draw, with_seeds(args.methods, args.seeds), rerun)
        # Written after every draw, so a long run that is stopped keeps what it finished.
        summary = summarise(results, args.methods, args.seeds)
        markdown = to_markdown(results, summary, args.methods, command, args.seeds)
        _common.write_results(f"clustering_{args.split}", {"command": command, "split": args.split, "summary": summary,
                                                           "results": results}, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
