"""Stage 2: peak detection with SpikeInterface's ``detect_peaks``."""

from __future__ import annotations

import logging

import numpy as np
from spikeinterface.core import get_noise_levels
from spikeinterface.sortingcomponents.peak_detection import detect_peaks

logger = logging.getLogger(__name__)

MIN_PROTOTYPE_PEAKS = 50


def estimate_noise_levels(recording, *, seed: int, job_kwargs: dict) -> np.ndarray:
    """Each channel's noise level (MAD) on random chunks drawn with ``seed``."""
    return get_noise_levels(recording, return_in_uV=False, random_slices_kwargs=dict(seed=seed), **job_kwargs)


def detect(recording, noise_levels: np.ndarray, *, peak_sign: str, detection_method: str, detect_threshold: float,
           detection_radius_um: float, exclude_sweep_ms: float, prototype_ms_before: float,
           prototype_ms_after: float, seed: int, job_kwargs: dict) -> np.ndarray:
    """One peak per spike per neighbourhood, by threshold crossing or by matched filtering with a
    spike prototype averaged over a window of ``prototype_ms_before`` to ``prototype_ms_after``."""
    method_kwargs = dict(peak_sign=peak_sign, detect_threshold=detect_threshold, exclude_sweep_ms=exclude_sweep_ms,
                         radius_um=detection_radius_um)
    method = detection_method
    if method == "matched_filtering":
        from spikeinterface.sortingcomponents.tools import get_prototype_and_waveforms_from_recording

        # One worker: the prototype pass stops after n_peaks, and with several workers which
        # chunks got there first (and so the prototype and every peak after it) varied run to run.
        prototype, _, first_peaks = get_prototype_and_waveforms_from_recording(
            recording, n_peaks=10_000, ms_before=prototype_ms_before, ms_after=prototype_ms_after, seed=seed,
            noise_levels=noise_levels, job_kwargs=dict(job_kwargs, n_jobs=1),
        )
        fs = recording.get_sampling_frequency()
        if _usable_prototype(prototype, len(first_peaks), prototype_ms_before, fs, peak_sign):
            # The detector estimates the filtered traces' noise on random chunks: seeded, for reproducibility.
            method_kwargs |= dict(prototype=prototype, ms_before=prototype_ms_before,
                                  random_chunk_kwargs={"num_chunks_per_segment": 5, "seed": seed})
        else:
            logger.info("only %d threshold crossings to learn a spike prototype from: plain threshold detection",
                        len(first_peaks))
            method = "locally_exclusive"
    if method == "locally_exclusive":
        method_kwargs["noise_levels"] = noise_levels
    return detect_peaks(recording, method=method, method_kwargs=method_kwargs, job_kwargs=job_kwargs)


def _usable_prototype(prototype, n_peaks: int, ms_before: float, fs: float, peak_sign: str) -> bool:
    """A prototype averaged from enough spikes, with its extremum of the sign detected (a quiet
    recording gives no spikes to average, and matched filtering would then find only noise)."""
    if n_peaks < MIN_PROTOTYPE_PEAKS or not np.all(np.isfinite(prototype)):
        return False
    centre = prototype[int(round(ms_before * fs / 1000.0))]
    return {"neg": centre < 0, "pos": centre > 0}.get(peak_sign, True)
