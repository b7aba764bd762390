"""Checks on the recording and on the output location, run before any long work starts."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
from spikeinterface.core import BaseRecording

from .errors import OutputFolderError, RecordingError
from .params import SORTER_PARAMS

MIN_SAMPLING_FREQUENCY = 10_000.0

# Plausible extracellular noise once the traces are scaled with ``gain_to_uV``: a few µV to a few tens of µV.
# The bounds are wide on purpose; a wrong unit (V, mV or nV per bit instead of µV per bit) lands a factor
# 1000 or more outside them.
PLAUSIBLE_NOISE_UV = (0.1, 1000.0)

# A run always writes its log, peaks, snippets and checkpoints: with less free space than this it would fail.
MIN_FREE_BYTES = 16 * 2**20


class RecordingWarning(UserWarning):
    """The recording can be sorted, but something about it is probably wrong (for example its gains)."""


# Working Python for SpikeInterface 0.105, where set_probe changes the recording in place and returns None.
PROBE_ADVICE = (
    "probe = probeinterface.read_probeinterface('probe.json').probes[0] (or probeinterface.generate_tetrode() "
    "for a tetrode); probe.set_device_channel_indices(range(recording.get_num_channels())); "
    "recording.set_probe(probe)"
)


def check_recording(recording) -> None:
    """Raise :class:`RecordingError` with the fix when ``recording`` cannot be sorted.

    Reads a few short excerpts of every segment: NaN/inf samples and unreadable parts
    (a truncated file) are reported here, before any folder is created. Gains to µV that
    are non-positive or non-finite are refused; gains giving an implausible noise level
    in µV only warn (:class:`RecordingWarning`), because the sorter works on the unscaled
    traces and only the µV outputs (reports, exported amplitudes, the 'ibl' preset's
    bad-channel detection) depend on them.
    """
    if not isinstance(recording, BaseRecording):
        raise RecordingError(
            f"Expected a SpikeInterface recording, got {type(recording).__name__}. "
            "Load your data with spikeinterface.extractors (e.g. si.read_spikeglx) or si.load."
        )
    n_channels = recording.get_num_channels()
    if n_channels == 0:
        raise RecordingError("The recording has no channels. Check the channel selection that produced it.")
    if not recording.has_probe():
        raise RecordingError(
            "The recording has no channel locations. Attach a probeinterface Probe to it (in place): "
            + PROBE_ADVICE
        )
    fs = recording.get_sampling_frequency()
    if fs < MIN_SAMPLING_FREQUENCY:
        raise RecordingError(
            f"Sampling frequency {fs:g} Hz is below {MIN_SAMPLING_FREQUENCY:g} Hz: spikes (~1 ms) cannot be "
            "resolved. Check the sampling frequency you gave when loading the data."
        )
    min_samples = int(0.01 * fs)  # one snippet (a few ms) must fit
    for segment in range(recording.get_num_segments()):
        n = recording.get_num_samples(segment)
        if n < min_samples:
            raise RecordingError(
                f"Segment {segment} has only {n} samples ({n / fs * 1000:.1f} ms), shorter than one spike snippet. "
                "Sort a longer recording."
            )
    gains = _check_gains(recording)
    excerpts = _read_excerpts(recording)
    _check_finite(recording, excerpts)
    if gains is not None:
        _check_noise_in_uv(recording, excerpts, gains)


def _check_gains(recording) -> np.ndarray | None:
    """The gains to µV when the recording has them; non-positive or non-finite ones are refused."""
    if not recording.has_scaleable_traces():
        return None
    gains = np.asarray(recording.get_channel_gains(), dtype=float)
    offsets = np.asarray(recording.get_channel_offsets(), dtype=float)
    bad = ~np.isfinite(gains) | (gains <= 0)
    if bad.any():
        channel = recording.channel_ids[int(np.flatnonzero(bad)[0])]
        raise RecordingError(
            f"The recording's gain_to_uV is {gains[bad][0]!r} on channel {channel} ({int(bad.sum())} channel(s) "
            "affected): gains must be finite and > 0 (µV per bit). Set the right gains with "
            "recording.set_channel_gains(...) (the acquisition system's µV per bit, e.g. 2.34 for Neuropixels 1.0 "
            "AP, 0.195 for Intan), or load the data with its SpikeInterface reader, which sets them."
        )
    if not np.all(np.isfinite(offsets)):
        raise RecordingError(
            "The recording's offset_to_uV is NaN or inf on some channels. Set finite offsets with "
            "recording.set_channel_offsets(...) (usually 0)."
        )
    return gains


def _read_excerpts(recording, n_probes: int = 8, probe_seconds: float = 0.1) -> list[tuple[int, int, np.ndarray]]:
    """Evenly spread excerpts of every segment (a full scan would read it all), as (segment, start, traces).

    Eight reads of 0.1 s: each read has a fixed cost (a seek, a decompressed block, a generated
    block of a synthetic recording), and 16 reads of 0.05 s, the same samples, took 0.34 s
    instead of 0.09 s on the generated 32-channel reference recording.

    A read error (a truncated or damaged file) is reported as a :class:`RecordingError` naming where.
    """
    fs = recording.get_sampling_frequency()
    width = max(1, int(probe_seconds * fs))
    excerpts = []
    for segment in range(recording.get_num_segments()):
        n = recording.get_num_samples(segment)
        starts = np.unique(np.linspace(0, max(n - width, 0), n_probes).astype(int))
        for start in starts:
            end = min(int(start) + width, n)
            try:
                traces = recording.get_traces(segment_index=segment, start_frame=int(start), end_frame=end)
            except OSError as error:
                raise RecordingError(
                    f"The recording could not be read at segment {segment}, samples {start}-{end} "
                    f"({start / fs:.2f} s): {error}. The file is probably truncated or damaged: copy it again "
                    "from the acquisition machine, or cut the recording before that point with "
                    "recording.frame_slice(0, end_frame)."
                ) from error
            excerpts.append((segment, int(start), np.asarray(traces)))
    return excerpts


def _check_finite(recording, excerpts) -> None:
    """Look for NaN or inf in the excerpts."""
    for segment, start, traces in excerpts:
        if traces.dtype.kind == "f" and not np.all(np.isfinite(traces)):
            bad = np.argwhere(~np.isfinite(traces))[0]
            raise RecordingError(
                f"The recording contains NaN or inf samples (segment {segment}, sample {start + bad[0]}, "
                f"channel {recording.channel_ids[bad[1]]}). Replace them first, e.g. with "
                "spikeinterface.preprocessing.remove_artifacts or by zeroing the bad samples."
            )


def estimate_noise_uv(excerpts, gains: np.ndarray) -> float | None:
    """Median over channels of the high-frequency noise in µV, from the excerpts' first differences.

    Differences remove DC offsets and the LFP; for white noise MAD(diff) / 0.6745 / sqrt(2) is
    the noise's standard deviation. Channels without any variation (dead, or all zeros) are
    ignored; ``None`` when no channel varies.
    """
    per_excerpt = []
    for _, _, traces in excerpts:
        if traces.shape[0] < 3:
            continue
        diff = np.diff(traces.astype(np.float64), axis=0)
        mad = np.median(np.abs(diff - np.median(diff, axis=0)), axis=0)
        per_excerpt.append(mad / 0.6745 / np.sqrt(2.0))
    if not per_excerpt:
        return None
    noise = np.median(np.stack(per_excerpt), axis=0) * gains
    noise = noise[noise > 0]
    return float(np.median(noise)) if noise.size else None


def _check_noise_in_uv(recording, excerpts, gains) -> None:
    noise = estimate_noise_uv(excerpts, gains)
    low, high = PLAUSIBLE_NOISE_UV
    if noise is None or low <= noise <= high:
        return
    warnings.warn(
        f"With the recording's gain_to_uV ({np.median(gains):g} µV per bit) its noise level is {noise:.3g} µV, "
        f"outside the plausible {low:g}-{high:g} µV for extracellular data: the gains are probably in the wrong "
        "unit (V or mV instead of µV per bit) or wrong. The sorting itself uses the unscaled traces and is not "
        "affected, but amplitudes in µV (reports, exports, quality metrics, the 'ibl' preset's bad-channel "
        "detection) will be wrong: set the right gains with recording.set_channel_gains(...).",
        RecordingWarning,
        stacklevel=3,
    )


def preprocessing_cache_bytes(recording, cache_preprocessing: str) -> int:
    """Bytes the preprocessing cache writes into the sorter folder (0 when it stays in memory or is off).

    A float32 copy of every channel, on disk when :func:`~spikeinterface_deepsort.settings.cache_mode`
    says 'folder' ('folder', the default, or 'auto' beyond ``MEMORY_CACHE_LIMIT_BYTES``).
    """
    from .settings import cache_mode, float32_bytes

    return int(float32_bytes(recording)) if cache_mode(recording, cache_preprocessing) == "folder" else 0


def check_output_location(folder, recording=None, cache_preprocessing: str | None = None) -> None:
    """Raise :class:`OutputFolderError` when ``folder`` cannot be created or written, or its disk is too full.

    Creates nothing. The existing-folder rule (refused unless overwriting) is the caller's.
    With ``recording``, the free space must also hold the preprocessing cache when
    ``cache_preprocessing`` (the sorter's default if None) puts it on disk.
    """
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        if existing == folder:
            raise OutputFolderError(
                f"Output folder {folder} is a file, not a folder. Choose another output folder, or move that file."
            )
        raise OutputFolderError(
            f"Cannot create output folder {folder}: {existing} is a file, not a folder. Choose an output folder "
            "whose parent is a folder, or move that file."
        )
    read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    if read_only or not os.access(existing, os.W_OK | os.X_OK):
        why = "is on a read-only file system" if read_only else "is not writable by this user"
        raise OutputFolderError(
            f"Cannot write the output folder {folder}: {existing} {why}. Choose an output folder on a writable "
            "disk (or fix the permissions)."
        )
    needed = MIN_FREE_BYTES
    if cache_preprocessing is None:
        cache_preprocessing = SORTER_PARAMS.defaults()["cache_preprocessing"]
    cache = preprocessing_cache_bytes(recording, cache_preprocessing) if recording is not None else 0
    needed += cache
    free = shutil.disk_usage(existing).free
    if free < needed:
        what = (f"the preprocessing cache ({cache / 2**30:.2f} GiB of float32 traces, "
                f"cache_preprocessing={cache_preprocessing!r}) and the run's files" if cache else "the run's files")
        raise OutputFolderError(
            f"Not enough free disk space for {folder}: {free / 2**20:.1f} MiB free on that disk, about "
            f"{needed / 2**20:.1f} MiB needed for {what}. Free some space or choose an output folder on another disk."
        )
