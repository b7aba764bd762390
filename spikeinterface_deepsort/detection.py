"""Stage 2: peak detection with SpikeInterface's ``detect_peaks``."""

from __future__ import annotations

import numpy as np
from spikeinterface.core import get_noise_levels
from spikeinterface.sortingcomponents.peak_detection import detect_peaks


def estimate_noise_levels(recording, seed, job_kwargs: dict) -> np.ndarray:
    return get_noise_levels(recording, return_in_uV=False, random_slices_kwargs=dict(seed=seed), **job_kwargs)


def detect(recording, noise_levels: np.ndarray, params: dict, job_kwargs: dict) -> np.ndarray:
    """Locally exclusive threshold crossings: one peak per spike per neighbourhood."""
    return detect_peaks(
        recording,
        method="locally_exclusive",
        method_kwargs=dict(
            noise_levels=noise_levels,
            peak_sign=params["peak_sign"],
            detect_threshold=params["detect_threshold"],
            exclude_sweep_ms=params["exclude_sweep_ms"],
            radius_um=params["detection_radius_um"],
        ),
        job_kwargs=job_kwargs,
    )
