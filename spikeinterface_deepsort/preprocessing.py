"""Stage 1: preprocessing with SpikeInterface.

Bandpass, global median reference and local whitening, as the peers do; optional
motion correction (DREDge through ``correct_motion``) and an IBL/Neuropixels preset
(phase shift, bad-channel interpolation, high-pass spatial filter). Everything stays
lazy: SpikeInterface computes it chunk by chunk when the recording is read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import spikeinterface.preprocessing as spre

logger = logging.getLogger(__name__)


def wants_common_reference(recording, setting: str) -> bool:
    if setting == "auto":
        return recording.get_num_channels() >= 8
    return setting == "on"


def wants_motion_correction(recording, setting: str) -> bool:
    """'auto': only probes with many contacts spread along depth, where drift is visible and correctable."""
    if setting == "auto":
        depth_span = float(np.ptp(recording.get_channel_locations()[:, 1]))
        return recording.get_num_channels() >= 64 and depth_span >= 400.0
    return setting == "on"


def preprocess(recording, params: dict, folder: Path, job_kwargs: dict):
    """Return the preprocessed float32 recording (lazy) the rest of the pipeline reads."""
    if not params["apply_preprocessing"]:
        return recording.astype("float32") if recording.get_dtype() != np.float32 else recording

    if params["preset"] == "ibl":
        recording = _ibl_front_end(recording)

    nyquist = recording.get_sampling_frequency() / 2.0
    freq_max = min(params["freq_max"], 0.95 * nyquist)
    rec = spre.bandpass_filter(recording, freq_min=params["freq_min"], freq_max=freq_max, dtype="float32")
    if wants_common_reference(rec, params["common_reference"]):
        rec = spre.common_reference(rec, reference="global", operator="median")

    motion_on = wants_motion_correction(rec, params["motion_correction"])
    if motion_on:
        logger.info("motion correction (%s)", params["motion_preset"])
        rec = spre.correct_motion(
            rec,
            preset=params["motion_preset"],
            folder=Path(folder) / "motion",
            overwrite=True,
            **{k: v for k, v in job_kwargs.items() if k in ("n_jobs", "chunk_duration", "progress_bar")},
        )
    if params["whitening"]:
        rec = spre.whiten(
            rec,
            dtype="float32",
            mode="local",
            radius_um=params["whitening_radius_um"],
            seed=params["seed"],
        )
    return rec


def _ibl_front_end(recording):
    """IBL's destriping front end, built from SpikeInterface's preprocessing steps."""
    if recording.get_property("inter_sample_shift") is not None:
        recording = spre.phase_shift(recording)
    recording = spre.highpass_filter(recording, freq_min=300.0, dtype="float32")
    bad_ids, _ = spre.detect_bad_channels(recording, method="coherence+psd")
    if len(bad_ids) > 0 and len(bad_ids) < recording.get_num_channels() // 2:
        logger.info("interpolating %d bad channels", len(bad_ids))
        recording = spre.interpolate_bad_channels(recording, bad_ids)
    if recording.get_num_channels() >= 32:
        recording = spre.highpass_spatial_filter(recording)
    return recording
