"""The DeepSpikeSort pipeline, stage by stage.

    1. preprocessing      bandpass, common median reference, local whitening (SpikeInterface)
    2. detection          matched filtering with a spike prototype (SpikeInterface's detect_peaks)
    3. snippets           windows on each peak's neighbour channels, memory-mapped on disk
    4. deepcluster        a CNN encoder trained by rounds of embed -> k-means -> train
    5. units              HDBSCAN on the learned embedding and the peak's position
    6. curation           over-split units merged (template similarity + refractory period)
    7. templates          mean templates of the final units
    8. matching           template matching over the whole recording (SpikeInterface)

Every stage writes its result into the sorter folder before the next starts, and logs
its duration; with ``resume=True`` finished stages are read back instead of recomputed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from spikeinterface.core import NumpySorting, Templates, load
from spikeinterface.core.job_tools import fix_job_kwargs
from threadpoolctl import threadpool_limits

from .curation import merge_over_split_units
from .deepcluster import embed_snippets, embedding_noise_seed, run_deepcluster
from .detection import detect, estimate_noise_levels
from .distributed import broadcast_object, is_main_process
from .matching import (
    drop_noise_fits,
    estimate_templates,
    match_templates,
    peaks_to_spikes,
    projection_noise,
    spikes_to_sorting,
)
from .params import SORTER_PARAMS
from .preprocessing import preprocess_and_cache
from .snippets import SnippetStore, extract_snippets
from .torch_utils import resolve_device, seed_everything, torch_threads
from .units import fit_units
from .validation import check_recording

logger = logging.getLogger("spikeinterface_deepsort")

# Engines whose "amplitude" is the scaling of the template fitted to each spike.
AMPLITUDE_SCALING_ENGINES = ("circus-omp", "wobble")
LOG_NAME = "deepspikesort.log"  # SpikeInterface copies sorter_output/<sorter_name>.log into spikeinterface_log.json


@contextmanager
def _thread_pools_restored():
    """Put the BLAS and OpenMP thread pools back as they were. SpikeInterface's thread engine
    limits every pool to one thread around each chunk with threadpoolctl, and when two worker
    threads overlap, one restores the limit the other set: a stage could leave the process with
    single-threaded BLAS, or single-threaded OpenMP and so PyTorch (DeepCluster then trained on
    one core), and the caller with them. threadpoolctl with no limit changes nothing and
    restores every pool's size on exit."""
    with threadpool_limits(limits=None):
        yield


class StageTimer:
    """Logs each stage's start and duration and keeps them in ``stages.json``; every stage starts
    with the thread pools the caller had (see :func:`_thread_pools_restored`)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / "stages.json"
        self.durations = json.loads(self.path.read_text()) if self.path.exists() else {}

    @contextmanager
    def __call__(self, name: str):
        logger.info("stage %s: started", name)
        t0 = time.perf_counter()
        with _thread_pools_restored():
            yield
        seconds = time.perf_counter() - t0
        self.durations[name] = round(seconds, 3)
        self.path.write_text(json.dumps(self.durations, indent=2))
        logger.info("stage %s: done in %.1f s", name, seconds)


@contextmanager
def _log_to_file(folder: Path, verbose: bool):
    handler = logging.FileHandler(Path(folder) / LOG_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    console = None
    if verbose and not logging.getLogger().handlers:
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter("deepspikesort %(message)s"))
        logger.addHandler(console)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        if console is not None:
            logger.removeHandler(console)
        logger.setLevel(previous_level)


def _save_sorting_atomic(sorting, folder: Path):
    """Save to a temporary folder, then rename: a crash never leaves a half-written Sorting that loads."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with warnings.catch_warnings():  # an in-memory Sorting has no provenance to record: expected, not news
        warnings.filterwarnings("ignore", message="The extractor is not serializable")
        saved = sorting.save(folder=tmp)
    del saved
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return load(folder)


def _save_array(path: Path, array: np.ndarray) -> None:
    """np.save to a temporary file, then rename: a killed run never leaves a truncated stage file."""
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _save_templates(templates: Templates, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, templates_array=templates.templates_array, sparsity_mask=templates.sparsity.mask,
             unit_ids=templates.unit_ids, nbefore=templates.nbefore)
    os.replace(tmp, path)


def _load_templates(path: Path, recording) -> Templates:
    data = np.load(path)
    return Templates(
        templates_array=data["templates_array"], sampling_frequency=recording.get_sampling_frequency(),
        nbefore=int(data["nbefore"]), channel_ids=recording.channel_ids, unit_ids=data["unit_ids"],
        sparsity_mask=data["sparsity_mask"], probe=recording.get_probe(), is_in_uV=False,
    )


def _threaded_job_kwargs(job_kwargs: dict, params: dict) -> dict:
    """job_kwargs for the preprocessing cache and the stages that read the cached traces (noise
    levels, detection, snippets, templates): threads, unless the user chose a pool_engine.
    Matched filtering's numba kernel is compiled in the process that first calls it; forked
    workers compiled it anew on every run (2.4 s of a 3.6 s detection on the 32-channel case),
    threads share the main process's, and the kernel and the FFT convolutions release the GIL
    (1.2 s). The filters of the cache pass release it too (1.8 s in threads, 2.1 s in processes,
    which also copy each chunk back). The other stages are short: starting worker processes cost
    them more than they saved. Matching keeps the user's engine: circus-omp holds the GIL
    (processes 3.5 s, threads 5.5 s)."""
    if "pool_engine" in params["job_kwargs"]:
        return job_kwargs
    return job_kwargs | {"pool_engine": "thread", "mp_context": None}


def _empty_sorting(recording, folder: Path, reason: str):
    warnings.warn(f"deepspikesort: {reason}; returning an empty Sorting.")
    logger.warning("%s; returning an empty Sorting", reason)
    empty = NumpySorting.from_unit_dict([{} for _ in range(recording.get_num_segments())],
                                        recording.get_sampling_frequency())
    return _save_sorting_atomic(empty, folder / "sorting")


SEED_FILE = "seed.json"


def resolve_seed(seed: int | None, folder: Path, resume: bool) -> int:
    """The run's seed: the one given; with seed=None one drawn at random, logged and kept in the
    folder, so that the run can be reproduced afterwards and a resumed run goes on with it."""
    path = folder / SEED_FILE
    if seed is None and resume and path.exists():
        return int(json.loads(path.read_text())["seed"])
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**31)
    path.write_text(json.dumps({"seed": seed}))
    return seed


def run_deepspikesort(recording, folder, params: dict | None = None, verbose: bool = True, check_input: bool = True):
    """Sort ``recording``; everything is written into ``folder`` (the sorter output folder).

    ``params`` are validated against :data:`SORTER_PARAMS` before any work starts, and the
    recording is checked (``check_input=False``: the caller already did). The final Sorting
    is saved in ``folder / "sorting"`` and returned.
    """
    params = SORTER_PARAMS.validate(params or {})
    if not is_main_process():
        return _join_deepcluster(Path(folder), params)
    if check_input:
        check_recording(recording)
    device = resolve_device(params["device"])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    resume = params["resume"]
    seed = resolve_seed(params["seed"], folder, resume)
    params = params | {"seed": seed}  # every stage reads the one resolved seed
    job_kwargs = fix_job_kwargs(dict(params["job_kwargs"]))
    job_kwargs["progress_bar"] = job_kwargs["progress_bar"] and verbose
    threaded = _threaded_job_kwargs(job_kwargs, params)
    seed_everything(seed)

    with _log_to_file(folder, verbose):
        stage = StageTimer(folder)
        logger.info("sorting %s on %s with %d channels, %.1f s, seed %d", recording.__class__.__name__, device,
                    recording.get_num_channels(), recording.get_total_duration(), seed)

        with stage("preprocessing"):
            rec, cache_folder = preprocess_and_cache(recording, params, folder, threaded, resume)

        with stage("detection"):
            if resume and (folder / "peaks.npy").exists():
                peaks, noise_levels = np.load(folder / "peaks.npy"), np.load(folder / "noise_levels.npy")
            else:
                noise_levels = estimate_noise_levels(rec, seed, threaded)
                peaks = detect(rec, noise_levels, params, threaded, seed)
                _save_array(folder / "noise_levels.npy", noise_levels)
                _save_array(folder / "peaks.npy", peaks)
            logger.info("%d peaks detected", len(peaks))
        enough_peaks = len(peaks) >= max(2 * params["min_cluster_size"], 50)
        if not enough_peaks:
            broadcast_object(False)  # torchrun workers waiting for DeepCluster can leave
            return _empty_sorting(recording, folder, f"only {len(peaks)} peaks were detected (too short or too quiet)")

        with stage("snippets"):
            if resume and SnippetStore.is_complete(folder / "snippets"):
                store = SnippetStore.load(folder / "snippets")
            else:
                store = extract_snippets(
                    rec, peaks, folder / "snippets", params["snippet_ms_before"], params["snippet_ms_after"],
                    params["snippet_radius_um"], params["max_snippet_channels"], threaded,
                )

        broadcast_object(True)  # snippets are on disk: torchrun workers join DeepCluster
        with stage("deepcluster"), torch_threads(params["torch_threads"]):
            trained = run_deepcluster(store, rec.get_num_channels(), params, folder / "deepcluster", device, seed,
                                      progress=verbose, resume=resume)

        with stage("units"), torch_threads(params["torch_threads"]):
            labels_path = folder / "peak_labels.npy"
            if resume and labels_path.exists():
                peak_labels = np.load(labels_path)
            else:
                peak_labels = label_all_peaks(trained, store, params, device, seed)
                _save_array(labels_path, peak_labels)
            n_units = len(np.unique(peak_labels[peak_labels >= 0]))
            logger.info("%d units from the embedding, %d outlier peaks dropped", n_units, int((peak_labels < 0).sum()))
        if n_units == 0:
            return _empty_sorting(recording, folder, "no unit could be formed from the detected peaks")

        with stage("curation"):
            unit_labels_path = folder / "unit_labels.npy"
            if resume and unit_labels_path.exists():
                unit_labels = np.load(unit_labels_path)
            else:
                fragments = estimate_templates(rec, peaks, peak_labels, noise_levels, params, threaded)
                total_samples = sum(rec.get_num_samples(s) for s in range(rec.get_num_segments()))
                unit_labels = merge_over_split_units(fragments, peaks, peak_labels, params["merge_max_template_diff"],
                                                     total_samples)
                _save_array(unit_labels_path, unit_labels)
            logger.info("%d units after merging over-split ones", len(np.unique(unit_labels[unit_labels >= 0])))

        with stage("templates"):
            templates_path = folder / "templates.npz"
            if resume and templates_path.exists():
                templates = _load_templates(templates_path, rec)
            else:
                templates = estimate_templates(rec, peaks, unit_labels, noise_levels, params, threaded)
                _save_templates(templates, templates_path)
            logger.info("%d templates kept for matching", len(templates.unit_ids))
        if len(templates.unit_ids) == 0:
            return _empty_sorting(recording, folder, "no unit had a template above min_template_snr")

        with stage("matching"):
            fs = rec.get_sampling_frequency()
            if params["matching_method"] == "none":
                # The clustered peaks themselves, labelled by their unit's position among the templates.
                kept = np.isin(unit_labels, templates.unit_ids)
                spikes = peaks_to_spikes(peaks, np.where(kept, np.searchsorted(templates.unit_ids, unit_labels), -1))
            else:
                matching_folder = folder / "matching"
                shutil.rmtree(matching_folder, ignore_errors=True)
                spikes = match_templates(rec, templates, noise_levels, params, matching_folder, job_kwargs)
                if params["matching_method"] in AMPLITUDE_SCALING_ENGINES:
                    sigma = projection_noise(rec, templates, seed)
                    spikes = drop_noise_fits(spikes, templates, sigma, params["min_fit_z"])
            sorting = spikes_to_sorting(spikes, templates.unit_ids, fs)
            logger.info("%d spikes found", len(spikes))

        sorting = _save_sorting_atomic(sorting, folder / "sorting")
        del rec
        if cache_folder is not None:
            shutil.rmtree(cache_folder, ignore_errors=True)
        if params["make_report"]:
            with stage("report"):
                from .report import make_report

                make_report(folder.parent if folder.name == "sorter_output" else folder, recording=recording, verbose=verbose)
        return sorting


def _join_deepcluster(folder: Path, params: dict) -> None:
    """A torchrun rank other than 0: wait for rank 0's snippets, train DeepCluster with it, leave."""
    if not broadcast_object(None):
        return None
    seed = params["seed"] if params["seed"] is not None else 0
    seed_everything(seed)
    store = SnippetStore.load(folder / "snippets")
    with torch_threads(params["torch_threads"]):
        run_deepcluster(store, store.neighbours.shape[0], params, folder / "deepcluster",
                        resolve_device(params["device"]), seed, progress=False, resume=params["resume"])
    return None


def label_all_peaks(trained, store, params, device, seed) -> np.ndarray:
    """Fit units on the training peaks, then assign every peak chunk by chunk."""
    noise_seed = embedding_noise_seed(params, seed)
    train_embedding = trained.embedding
    if train_embedding is None:
        train_embedding = embed_snippets(trained.model, store, trained.train_indices, params["batch_size"], device,
                                         noise_seed=noise_seed)
    finder, train_labels = fit_units(train_embedding, store.locations[trained.train_indices], params, seed)
    labels = np.full(len(store), -1, dtype=np.int64)
    labels[trained.train_indices] = train_labels
    others = np.setdiff1d(np.arange(len(store)), trained.train_indices)
    chunk = 50_000
    for start in range(0, len(others), chunk):
        index = others[start:start + chunk]
        embedding = embed_snippets(trained.model, store, index, params["batch_size"], device,
                                   noise_seed=None if noise_seed is None else noise_seed + 1 + start // chunk)
        labels[index] = finder.predict(embedding, store.locations[index])
    return labels
