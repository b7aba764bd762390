"""The DeepSpikeSort pipeline, stage by stage.

    1. preprocessing      bandpass, common median reference, local whitening (SpikeInterface)
    2. detection          matched filtering with a spike prototype (SpikeInterface's detect_peaks)
    3. snippets           windows on each peak's neighbour channels, memory-mapped on disk
    4. deepcluster        a CNN encoder trained by rounds of embed -> k-means -> train
    5. units              HDBSCAN on the learned embedding and the peak's position
                          (local_split: each unit split again on its own channels' SVD features)
                          (clustering="iterative-hdbscan" | "iterative-isosplit": SpikeInterface's clustering
                          of the peaks instead of stages 3-5)
    6. curation           over-split units merged (template similarity + refractory period)
    7. templates          mean templates of the final units
    8. matching           template matching over the whole recording (SpikeInterface)

Each stage reads its own group of the parameters and the run's settings (seed, device,
job_kwargs: ``settings.py``), and writes its result into the sorter folder (``run_folder.py``)
before the next starts; with ``resume=True`` finished stages are read back instead.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np

from .compiled_kernels import cache_compiled_kernels
from .learning.distributed import broadcast_object, is_main_process
from .learning.torch_utils import cpu_threads, seed_everything
from .params import SORTER_PARAMS
from .run_folder import RunFolder
from .settings import RunSettings, resolve_seed, resolve_settings
from .stages.curation import curate_units
from .stages.deepcluster import embedding_noise_seed, run_deepcluster
from .stages.detection import detect, estimate_noise_levels
from .stages.matching import estimate_templates, find_spikes, spikes_to_sorting
from .stages.preprocessing import preprocess_and_cache
from .stages.snippets import SnippetStore, extract_snippets
from .stages.splitting import split_units_locally
from .stages.units import label_all_peaks, run_isosplit_rounds, spikeinterface_clustering_labels
from .validation import check_recording

logger = logging.getLogger("spikeinterface_deepsort")


def run_deepspikesort(recording, folder, params: dict | None = None, verbose: bool = True, check_input: bool = True):
    """Sort ``recording``; everything is written into ``folder`` (the sorter output folder).

    ``params`` are validated against :data:`SORTER_PARAMS` before any work starts, and the
    recording is checked (``check_input=False``: the caller already did). The final Sorting
    is saved in ``folder / "sorting"`` and returned.
    """
    params = SORTER_PARAMS.validate(params or {})
    run = RunFolder(folder, resume=params["resume"])
    if not is_main_process():
        return _join_deepcluster(run, params)
    if check_input:
        check_recording(recording)
    run.path.mkdir(parents=True, exist_ok=True)
    seed = resolve_seed(params["seed"], saved=run.saved_seed())
    run.save_seed(seed)
    settings = resolve_settings(params, seed, progress=verbose)
    seed_everything(seed)
    cache_compiled_kernels()
    # One thread count (PyTorch, BLAS, OpenMP) for the whole sort: DeepCluster's and motion's sums depend on it.
    with run.logging_to_file(verbose), cpu_threads(settings.torch_threads):
        logger.info("sorting %s on %s with %d channels, %.1f s, seed %d", recording.__class__.__name__,
                    settings.device, recording.get_num_channels(), recording.get_total_duration(), seed)
        return _sort(recording, run, params, settings)


def _sort(recording, run: RunFolder, p: dict, s: RunSettings):
    group = SORTER_PARAMS.group
    with run.stage("preprocessing"):
        rec, cache_folder = preprocess_and_cache(recording, **group(p, "preprocessing"), folder=run.path, seed=s.seed,
                                                 resume=s.resume, job_kwargs=s.reader_job_kwargs,
                                                 user_job_kwargs=s.user_job_kwargs)
    with run.stage("detection"):
        noise_levels = run.cached_array("noise_levels", lambda: estimate_noise_levels(
            rec, seed=s.seed, job_kwargs=s.reader_job_kwargs))
        peaks = run.cached_array("peaks", lambda: detect(
            rec, noise_levels, **group(p, "detection"), prototype_ms_before=p["snippet_ms_before"],
            prototype_ms_after=p["snippet_ms_after"], seed=s.seed, job_kwargs=s.reader_job_kwargs))
        logger.info("%d peaks detected", len(peaks))
    if len(peaks) < max(2 * p["min_cluster_size"], 50):
        broadcast_object(False)  # torchrun workers waiting for DeepCluster can leave
        return run.save_empty_sorting(recording, f"only {len(peaks)} peaks were detected (too short or too quiet)")

    if p["clustering"] == "deepcluster":
        peak_labels, first_small_label = _learned_units(rec, peaks, noise_levels, run, p, s)
    else:
        broadcast_object(False)  # no DeepCluster: torchrun workers can leave
        with run.stage("units"):
            peak_labels = run.cached_array("peak_labels", lambda: spikeinterface_clustering_labels(
                rec, peaks, noise_levels, method=p["clustering"], seed=s.seed, job_kwargs=s.reader_job_kwargs))
        first_small_label = int(peak_labels.max()) + 1  # no second pass: every unit is a first-pass one
    n_units = len(np.unique(peak_labels[peak_labels >= 0]))
    logger.info("%d units from %s, %d outlier peaks dropped", n_units, p["clustering"], int((peak_labels < 0).sum()))
    if n_units == 0:
        return run.save_empty_sorting(recording, "no unit could be formed from the detected peaks")

    template_options = dict(template_ms_before=p["template_ms_before"], template_ms_after=p["template_ms_after"],
                            template_radius_um=p["template_radius_um"], min_template_snr=p["min_template_snr"])
    with run.stage("curation"):
        unit_labels = run.cached_array("unit_labels", lambda: curate_units(
            estimate_templates(rec, peaks, peak_labels, noise_levels, **template_options, job_kwargs=s.reader_job_kwargs),
            peaks, peak_labels, noise_levels, first_small_label=int(first_small_label),
            max_template_diff=p["merge_max_template_diff"], total_samples=rec.get_total_samples(),
            dead_time_ms=p["exclude_sweep_ms"]))
        logger.info("%d units after merging over-split ones", len(np.unique(unit_labels[unit_labels >= 0])))
    with run.stage("templates"):
        templates = run.cached_templates(lambda: estimate_templates(
            rec, peaks, unit_labels, noise_levels, **template_options, job_kwargs=s.reader_job_kwargs), rec)
        logger.info("%d templates kept for matching", len(templates.unit_ids))
    if len(templates.unit_ids) == 0:
        return run.save_empty_sorting(recording, "no unit had a template above min_template_snr")

    with run.stage("matching"):
        spikes = find_spikes(rec, templates, peaks, unit_labels, noise_levels, matching_method=p["matching_method"],
                             min_fit_z=p["min_fit_z"], folder=run.file("matching"), seed=s.seed,
                             job_kwargs=s.job_kwargs)
        logger.info("%d spikes found", len(spikes))
    sorting = run.save_sorting(spikes_to_sorting(spikes, templates.unit_ids, rec.get_sampling_frequency()))
    del rec
    if cache_folder is not None:
        shutil.rmtree(cache_folder, ignore_errors=True)
    return sorting


def _learned_units(rec, peaks, noise_levels, run: RunFolder, p: dict, s: RunSettings):
    """Stages 3-5 (snippets, DeepCluster, units, and with local_split the split): each peak's unit (-1:
    outlier) and the first label of the units HDBSCAN's second pass formed."""
    with run.stage("snippets"):
        store = _snippets(rec, peaks, run, p, s)
    broadcast_object(True)  # snippets are on disk: torchrun workers join DeepCluster
    with run.stage("deepcluster"):
        trained = _deepcluster(store, run, p, s, broadcast_object(_round_zero(rec, peaks, noise_levels, run, p, s)))
    with run.stage("units"):
        labels, first_small_label = run.cached_arrays(("peak_labels", "first_small_label"), lambda: label_all_peaks(
            trained, store, **SORTER_PARAMS.group(p, "units"), batch_size=p["batch_size"], device=s.device,
            noise_seed=embedding_noise_seed(p["stochastic_embedding"], s.seed)))
    if not p["local_split"]:
        return labels, first_small_label
    with run.stage("split"):
        return run.cached_arrays(("split_labels", "split_first_small_label"), lambda: split_units_locally(
            rec, peaks, labels, int(first_small_label), seed=s.seed, job_kwargs=s.reader_job_kwargs))


def _snippets(rec, peaks, run: RunFolder, p: dict, s: RunSettings) -> SnippetStore:
    if run.resume and SnippetStore.is_complete(run.snippets_path):
        return SnippetStore.load(run.snippets_path)
    return extract_snippets(rec, peaks, run.snippets_path, ms_before=p["snippet_ms_before"],
                            ms_after=p["snippet_ms_after"], radius_um=p["snippet_radius_um"],
                            max_channels=p["max_snippet_channels"], job_kwargs=s.reader_job_kwargs)


def _round_zero(rec, peaks, noise_levels, run: RunFolder, p: dict, s: RunSettings) -> np.ndarray | None:
    """pseudo_labels="isosplit": round 0's clusters, SpikeInterface's iterative-isosplit of the same peaks."""
    if p["pseudo_labels"] != "isosplit":
        return None
    return run.cached_array("round_zero_labels", lambda: spikeinterface_clustering_labels(
        rec, peaks, noise_levels, method="iterative-isosplit", seed=s.seed, job_kwargs=s.reader_job_kwargs))


def _deepcluster(store: SnippetStore, run: RunFolder, p: dict, s: RunSettings, round_zero: np.ndarray | None):
    options = dict(folder=run.deepcluster_path, num_channels=store.neighbours.shape[0], device=s.device,
                   seed=s.seed, progress=s.progress)
    if p["pseudo_labels"] == "isosplit":
        return run_isosplit_rounds(store, **SORTER_PARAMS.group(p, "deepcluster"), **options, initial_labels=round_zero)
    return run_deepcluster(store, **SORTER_PARAMS.group(p, "deepcluster"), **options, resume=s.resume)


def _join_deepcluster(run: RunFolder, params: dict) -> None:
    """A torchrun rank other than 0: wait for rank 0's snippets, train DeepCluster with it, leave."""
    if not broadcast_object(None):
        return None
    settings = resolve_settings(params, run.run_seed(), progress=False)  # rank 0's, saved before the snippets
    seed_everything(settings.seed)
    store = SnippetStore.load(run.snippets_path)
    with cpu_threads(settings.torch_threads):
        _deepcluster(store, run, params, settings, broadcast_object(None))
    return None
