"""Stage 1: preprocessing with SpikeInterface.

Bandpass, global median reference and local whitening, as the peers do; optional
motion correction (DREDge through ``correct_motion``) and an IBL/Neuropixels preset
(phase shift, bad-channel interpolation, high-pass spatial filter). Everything stays
lazy: SpikeInterface computes it chunk by chunk when the recording is read.
"""

from __future__ import annotations

import gc
import logging
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import spikeinterface.preprocessing as spre
from spikeinterface.core import get_noise_levels
from spikeinterface.preprocessing.common_reference import CommonReferenceRecording

from ..settings import cache_mode, float32_bytes

logger = logging.getLogger(__name__)


def wants_common_reference(recording, setting: str) -> bool:
    if setting == "auto":
        return recording.get_num_channels() >= 8
    return setting == "on"


MOTION_MIN_SPAN_UM = 100.0


def wants_motion_correction(recording, setting: str) -> bool:
    """'auto': probes whose contacts span at least MOTION_MIN_SPAN_UM along depth (five rows at a 20-µm
    pitch and more), where drift of a few tens of µm moves units across contacts and DREDge has rows
    to estimate it from; not tetrodes, whose two rows give it nothing to align."""
    if setting == "auto":
        return float(np.ptp(recording.get_channel_locations()[:, 1])) >= MOTION_MIN_SPAN_UM
    return setting == "on"


def filter_and_reference(recording, *, freq_min: float, freq_max: float, common_reference: str):
    """Bandpass to float32 (the high cut-off capped below Nyquist), then the global median reference
    where :func:`wants_common_reference` says so: the sorter's chain and :func:`for_analysis` both."""
    nyquist = recording.get_sampling_frequency() / 2.0
    rec = spre.bandpass_filter(recording, freq_min=freq_min, freq_max=min(freq_max, 0.95 * nyquist), dtype="float32")
    return MedianReferenceRecording(rec) if wants_common_reference(rec, common_reference) else rec


def preprocess(recording, *, apply_preprocessing: bool, freq_min: float, freq_max: float, common_reference: str,
               whitening: bool, whitening_radius_um: float, motion_correction: str, motion_preset: str, preset: str,
               seed: int, motion_folder: Path, job_kwargs: dict):
    """Return the preprocessed float32 recording (lazy) the rest of the pipeline reads."""
    if not apply_preprocessing:
        return recording.astype("float32") if recording.get_dtype() != np.float32 else recording
    rec = front_end(recording, freq_min=freq_min, freq_max=freq_max, common_reference=common_reference, preset=preset,
                    seed=seed, job_kwargs=job_kwargs)
    if wants_motion_correction(rec, motion_correction):
        rec = correct_motion(rec, motion_preset=motion_preset, motion_folder=motion_folder, seed=seed,
                             job_kwargs=job_kwargs)
    if whitening:
        rec = spre.whiten(rec, dtype="float32", W=whitening_matrix(rec, radius_um=whitening_radius_um, seed=seed))
    return rec


def front_end(recording, *, freq_min: float, freq_max: float, common_reference: str, preset: str, seed: int,
              job_kwargs: dict):
    """The steps before motion correction: the IBL front end where asked, bandpass, median reference."""
    if preset == "ibl":
        recording = _ibl_front_end(recording, seed=seed, job_kwargs=job_kwargs)
    return filter_and_reference(recording, freq_min=freq_min, freq_max=freq_max, common_reference=common_reference)


def correct_motion(recording, *, motion_preset: str, motion_folder: Path, seed: int, job_kwargs: dict):
    """SpikeInterface's ``correct_motion`` (the motion written to ``motion_folder``): the lazily
    interpolated recording."""
    logger.info("motion correction (%s)", motion_preset)
    # correct_motion's peak detection takes the recording's cached noise levels, else draws its noise
    # chunks unseeded: the motion, and the Sorting after it, then changed from run to run.
    get_noise_levels(recording, return_in_uV=False, random_slices_kwargs=dict(seed=seed))
    return spre.correct_motion(
        recording, preset=motion_preset, folder=Path(motion_folder), overwrite=True,
        **{k: v for k, v in job_kwargs.items() if k in ("n_jobs", "chunk_duration", "progress_bar")},
    )


def interpolation_keeps_channels(motion_preset: str) -> bool:
    """Whether the preset's interpolation returns every channel (``remove_channels`` drops the border ones)."""
    from spikeinterface.preprocessing.motion import get_motion_parameters_preset

    border = get_motion_parameters_preset(motion_preset)["interpolate_motion_kwargs"].get("border_mode")
    return border != "remove_channels"


def whitening_matrix(recording, *, radius_um: float, seed: int) -> np.ndarray:
    """SpikeInterface's local whitening matrix (``whiten(mode="local")``), from random chunks of
    ``recording`` drawn with the seed; one place for the lazy chain and the in-memory cache."""
    matrix, _ = spre.compute_whitening_matrix(recording, "local", dict(seed=seed), apply_mean=False,
                                              radius_um=radius_um)
    return matrix.astype(np.float32)


def for_analysis(recording, params: dict | None = None):
    """The recording as SpikeInterface's analysis tools (report, export, amplitudes) should see it:
    filtered and median-referenced like the sorter's input (``params``: the sort's parameters,
    the defaults if None), in its own units, not whitened. Unchanged when it is already filtered
    or the sorter was told it is preprocessed."""
    from ..params import SORTER_PARAMS

    params = SORTER_PARAMS.defaults() | (params or {})
    if not params["apply_preprocessing"] or recording.is_filtered():
        return recording
    return filter_and_reference(recording, freq_min=params["freq_min"], freq_max=params["freq_max"],
                                common_reference=params["common_reference"])


def median_by_sort(traces: np.ndarray, axis: int = 1, keepdims: bool = False) -> np.ndarray:
    """``np.median`` of a float array along ``axis``, computed from a full sort: the same values
    (the middle element, or the mean of the two middle ones), but NumPy's vectorised sort of
    short rows beats the selection np.median runs per row (docs/defaults.md)."""
    ordered = np.sort(traces, axis=axis)
    n = ordered.shape[axis]
    middle = (np.take(ordered, [(n - 1) // 2], axis=axis) + np.take(ordered, [n // 2], axis=axis)) / 2
    return middle if keepdims else np.squeeze(middle, axis=axis)


class MedianReferenceRecording(CommonReferenceRecording):
    """SpikeInterface's global common median reference (``common_reference(reference="global",
    operator="median")``) with the median computed by :func:`median_by_sort`. Why: np.median was
    a third of the preprocessing stage's CPU time; the traces are the same. Saved and reloaded
    like any SpikeInterface preprocessor."""

    def __init__(self, recording, dtype=None, **kwargs):
        kwargs = {"reference": "global", "operator": "median"} | kwargs
        super().__init__(recording, dtype=dtype, **kwargs)
        if self._kwargs["reference"] == "global" and self._kwargs["operator"] == "median":
            for segment in self._recording_segments:
                segment.operator_func = median_by_sort


def preprocess_and_cache(recording, *, apply_preprocessing: bool, freq_min: float, freq_max: float,
                         common_reference: str, whitening: bool, whitening_radius_um: float, motion_correction: str,
                         motion_preset: str, cache_preprocessing: str, preset: str, folder: Path, seed: int,
                         resume: bool, job_kwargs: dict, user_job_kwargs: dict):
    """Stage 1 as the sorter runs it: :func:`preprocess`, computed once for all later stages.
    Returns (recording, cache folder or None). With ``resume``, a cache on disk that was completed
    is read back; one that was not (a run stopped while writing or rewriting it) is made again.

    Filtering is the costly step, so it runs once: the filtered traces are cached, motion is
    estimated from the cache, and the cache is then rewritten in place, interpolated and
    whitened (the interpolation and the whitening mix channels of one sample, never samples).
    Why: ``correct_motion`` detects and localises peaks on its input, and on the lazy chain that
    pass filtered the whole recording a second time; SpikeInterface's ``whiten`` likewise draws
    its matrix's chunks from the lazy chain. Without motion correction, a cache on disk is
    written whitened in one pass, so that a long recording is not written twice.
    """
    mode = cache_mode(recording, cache_preprocessing)
    cache = Path(folder) / CACHE_FOLDER
    if mode == "folder" and resume and is_complete_cache(cache):
        return _load_cache(cache)
    cache_job_kwargs = _cache_job_kwargs(recording, job_kwargs, user_job_kwargs)
    steps = dict(freq_min=freq_min, freq_max=freq_max, common_reference=common_reference, preset=preset, seed=seed,
                 job_kwargs=job_kwargs)
    motion_folder = Path(folder) / "motion"
    corrects_motion = apply_preprocessing and wants_motion_correction(recording, motion_correction)
    rewrite = (mode == "memory" and apply_preprocessing and (whitening or corrects_motion)) or (
        mode == "folder" and corrects_motion)
    if not rewrite or (corrects_motion and not interpolation_keeps_channels(motion_preset)):
        cached, cache = cache_preprocessed(preprocess(
            recording, apply_preprocessing=apply_preprocessing, **steps, whitening=whitening,
            whitening_radius_um=whitening_radius_um, motion_correction=motion_correction, motion_preset=motion_preset,
            motion_folder=motion_folder), mode, folder, cache_job_kwargs)
    else:
        cached, cache = cache_preprocessed(front_end(recording, **steps), mode, folder, cache_job_kwargs)
        source = correct_motion(cached, motion_preset=motion_preset, motion_folder=motion_folder, seed=seed,
                                job_kwargs=job_kwargs) if corrects_motion else cached
        matrix = whitening_matrix(source, radius_um=whitening_radius_um, seed=seed) if whitening else None
        _rewrite_in_place(cached, source, matrix)
    if cache is not None:
        _mark_complete(cache)  # last: its traces are final
    return cached, cache


CACHE_CHUNK_BYTES = 8 * 2**20
CHUNK_KEYS = ("chunk_size", "chunk_duration", "chunk_memory", "total_memory")


def _cache_job_kwargs(recording, job_kwargs: dict, user_job_kwargs: dict) -> dict:
    """The cache pass reads every sample once, and each chunk pays a fixed cost (the filter's
    margins, a read of the source): its chunks hold at least CACHE_CHUNK_BYTES of float32 traces,
    never less than the job's own chunk, so that memory per worker stays bounded on wide probes
    (384 channels keep 1 s). A chunk setting in the user's job_kwargs is kept as given."""
    from spikeinterface.core.job_tools import ensure_chunk_size

    if any(key in user_job_kwargs for key in CHUNK_KEYS):
        return job_kwargs
    job_chunk = ensure_chunk_size(recording, **job_kwargs)
    by_memory = CACHE_CHUNK_BYTES // (4 * recording.get_num_channels())
    return {key: value for key, value in job_kwargs.items() if key not in CHUNK_KEYS} | {
        "chunk_size": int(max(job_chunk, by_memory))}


def _rewrite_in_place(cached, source, matrix: np.ndarray | None, block: int = 65_536) -> None:
    """Overwrite the cache's traces, block of samples by block, with ``source``'s (the cache interpolated
    for motion, or the cache itself), times the whitening ``matrix`` if given. A block of ``source`` only
    reads the same samples of the cache, so each is read before it is overwritten."""
    for segment in range(cached.get_num_segments()):
        traces = _writable_traces(cached, segment)
        for start in range(0, len(traces), block):
            end = min(start + block, len(traces))
            chunk = source.get_traces(start_frame=start, end_frame=end, segment_index=segment) if source is not cached \
                else traces[start:end]
            traces[start:end] = chunk @ matrix if matrix is not None else chunk
        if isinstance(traces, np.memmap):
            traces.flush()
    # Noise levels cached on the recording (correct_motion's, SpikeInterface keeps them as properties)
    # describe the traces before the rewrite: detection would threshold the whitened traces with them.
    for key in cached.get_property_keys():
        if key.startswith("noise_level_"):
            cached.delete_property(key)


def _writable_traces(cached, segment: int) -> np.ndarray:
    """A writable (samples, channels) view of one segment of a cache: its shared memory, or its binary file."""
    shape = (cached.get_num_samples(segment), cached.get_num_channels())
    if hasattr(cached, "shms"):
        return np.ndarray(shape, dtype=np.float32, buffer=cached.shms[segment].buf)
    binary = cached._recording_segments[segment]
    return np.memmap(binary.file_path, dtype=binary.dtype, mode="r+", offset=binary.file_offset, shape=shape)


CACHE_FOLDER = "preprocessed"
CACHE_COMPLETE = "deepspikesort_complete.json"  # written last: a cache without it is redone when resuming


def is_complete_cache(cache: Path) -> bool:
    return (cache / CACHE_COMPLETE).exists()


def _mark_complete(cache: Path) -> None:
    (cache / CACHE_COMPLETE).write_text("{}")


def _load_cache(cache: Path):
    from spikeinterface.core import load

    return load(cache), cache


def cache_preprocessed(recording, mode: str, folder: Path, job_kwargs: dict):
    """Compute the preprocessing once, so detection, snippets, templates and matching read it instead
    of re-filtering. ``mode`` is 'memory', 'folder' or 'off', as :func:`cache_mode` resolves it.
    Returns (recording, cache folder or None); an earlier cache folder is replaced."""
    if mode == "off":
        return recording, None
    if mode == "memory":
        return recording.save(format="memory", sharedmem=True, **job_kwargs), None
    cache = Path(folder) / CACHE_FOLDER
    shutil.rmtree(cache, ignore_errors=True)
    logger.info("caching the preprocessed recording on disk (%.1f GB) in %s", float32_bytes(recording) / 1e9, cache)
    with objects_frozen_for_gc():
        return recording.save(folder=cache, format="binary", **job_kwargs), cache


@contextmanager
def objects_frozen_for_gc():
    """Exclude the objects that exist now from garbage collection until the block ends (``gc.freeze``).
    Why: SpikeInterface's binary writer runs a full ``gc.collect()`` after every chunk, holding the
    GIL; with torch, numba and scipy imported, each took about 85 ms, a third of the disk cache's
    time on a 60-s, 64-channel recording. Objects created inside the block are still collected."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _ibl_front_end(recording, seed: int | None = 0, job_kwargs: dict | None = None):
    """IBL's destriping front end (ibl-neuropixel's ``destripe``), built from SpikeInterface's steps.

    The order is the one SpikeInterface documents for reproducing IBL's destriping:

    1. ``highpass_filter`` at 300 Hz, to float32 (removes the large DC offsets of raw
       Neuropixels int16 data, which the FFT-based steps after it must not see);
    2. ``phase_shift`` when the recording has the ``inter_sample_shift`` property
       (``read_spikeglx`` sets it from the probe's ADC multiplexing table): realigns the
       channels that one ADC samples one after another, before anything combines channels;
    3. ``detect_bad_channels`` (IBL's coherence + PSD method; it expects traces in µV, so a
       recording without gains falls back to the scale-free MAD method), then
       ``interpolate_bad_channels`` (kriging from the good neighbours): dead, noisy and
       outside-the-brain channels get their neighbours' signal. Skipped when half the
       channels or more come out bad, which means the detection itself failed;
    4. ``highpass_spatial_filter`` (IBL's "kfilt": a high-pass across depth with automatic
       gain control, which removes the stripes that the whole probe shares), applied to
       each shank on its own, with the channel padding capped to the shank's channel count.

    Random chunks (bad-channel detection, the spatial filter's RMS) are drawn with ``seed``,
    so the same seed gives the same preprocessing.
    """
    job_kwargs = dict(job_kwargs or {})
    n_channels = recording.get_num_channels()
    recording = spre.highpass_filter(recording, freq_min=300.0, dtype="float32")
    if "inter_sample_shift" in recording.get_property_keys():
        recording = spre.phase_shift(recording)

    bad_ids = _ibl_bad_channels(recording, seed, job_kwargs)
    if 0 < len(bad_ids) < n_channels / 2:
        logger.info("interpolating %d bad channel(s): %s", len(bad_ids), list(bad_ids))
        recording = spre.interpolate_bad_channels(recording, bad_ids)
    elif len(bad_ids) >= n_channels / 2:
        logger.warning("bad-channel detection flagged %d of %d channels; not interpolating (detection unreliable "
                       "on this recording)", len(bad_ids), n_channels)

    groups = recording.get_channel_groups()
    unique_groups = np.unique(groups) if groups is not None else np.array([0])
    if len(unique_groups) == 1:
        return _spatial_highpass(recording, seed, job_kwargs)
    parts = recording.split_by(property="group")
    filtered = [_spatial_highpass(parts[group], seed, job_kwargs) for group in unique_groups]
    return _aggregate_in_order(filtered, recording.channel_ids)


_MIN_CHANNELS_SPATIAL_FILTER = 16  # a high-pass across depth needs a column of contacts to work on
_MIN_CHANNELS_BAD_CHANNEL_DETECTION = 16  # IBL's method compares each channel with an 11-channel median trend


def _ibl_bad_channels(recording, seed, job_kwargs) -> np.ndarray:
    if recording.get_num_channels() < _MIN_CHANNELS_BAD_CHANNEL_DETECTION:
        return np.array([], dtype=recording.channel_ids.dtype)
    # A random 0.3 s chunk per 0.5 s of recording, at most 100 (SpikeInterface's default).
    num_chunks = int(np.clip(recording.get_total_duration() / 0.5, 1, 100))
    kwargs = dict(num_random_chunks=num_chunks, seed=seed)
    if recording.has_scaleable_traces():
        bad_ids, _ = spre.detect_bad_channels(recording, method="coherence+psd", job_kwargs=_quiet(job_kwargs),
                                              **kwargs)
    else:
        logger.info("recording has no gains to µV: bad channels detected with the MAD method instead of IBL's")
        bad_ids, _ = spre.detect_bad_channels(recording, method="mad", **kwargs)
    return np.asarray(bad_ids)


def _spatial_highpass(recording, seed, job_kwargs):
    n_channels = recording.get_num_channels()
    if n_channels < _MIN_CHANNELS_SPATIAL_FILTER:
        return recording
    # random_slice_kwargs goes to get_noise_levels (the RMS the automatic gain control uses)
    noise_kwargs = dict(random_slices_kwargs=dict(seed=seed), **_quiet(job_kwargs))
    return spre.highpass_spatial_filter(recording, n_channel_pad=min(60, n_channels), random_slice_kwargs=noise_kwargs)


def _quiet(job_kwargs: dict) -> dict:
    """The job_kwargs the one-off estimates run with: the caller's n_jobs, no progress bar."""
    kwargs = {k: v for k, v in (job_kwargs or {}).items() if k in ("n_jobs", "chunk_duration", "mp_context",
                                                                   "max_threads_per_worker", "pool_engine")}
    kwargs["progress_bar"] = False
    return kwargs


def _aggregate_in_order(recordings, channel_ids):
    """Put per-shank recordings back together with the original channel order."""
    import spikeinterface.core as sic

    aggregated = sic.aggregate_channels(recordings)
    return aggregated.select_channels(list(channel_ids))
