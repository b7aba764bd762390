"""Checks on the recording, run before any long work starts."""

from __future__ import annotations

import numpy as np
from spikeinterface.core import BaseRecording

from .errors import RecordingError

MIN_SAMPLING_FREQUENCY = 10_000.0


def check_recording(recording) -> None:
    """Raise :class:`RecordingError` with the fix when ``recording`` cannot be sorted."""
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
            "The recording has no channel locations. Attach a probe first: "
            "recording = recording.set_probe(probe) with a probeinterface Probe "
            "(for example probeinterface.generate_tetrode() or one read with probeinterface.read_probeinterface)."
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
    _check_finite(recording)


def _check_finite(recording, n_probes: int = 16, probe_seconds: float = 0.05) -> None:
    """Look for NaN or inf in evenly spread excerpts of every segment (a full scan would read it all)."""
    fs = recording.get_sampling_frequency()
    width = max(1, int(probe_seconds * fs))
    for segment in range(recording.get_num_segments()):
        n = recording.get_num_samples(segment)
        starts = np.unique(np.linspace(0, max(n - width, 0), n_probes).astype(int))
        for start in starts:
            traces = recording.get_traces(segment_index=segment, start_frame=start, end_frame=min(start + width, n))
            if traces.dtype.kind == "f" and not np.all(np.isfinite(traces)):
                bad = np.argwhere(~np.isfinite(traces))[0]
                raise RecordingError(
                    f"The recording contains NaN or inf samples (segment {segment}, sample {start + bad[0]}, "
                    f"channel {recording.channel_ids[bad[1]]}). Replace them first, e.g. with "
                    "spikeinterface.preprocessing.remove_artifacts or by zeroing the bad samples."
                )
