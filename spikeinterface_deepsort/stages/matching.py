"""Stages 7 and 8: templates of the units, then template matching over the whole recording.

Detection keeps one peak per neighbourhood and dead time, so spikes that overlap in time
and space are lost at detection; SpikeInterface's matching engines (``find_spikes_from_templates``) recover
them by explaining the traces with the units' templates.
"""

from __future__ import annotations

import inspect
import shutil
import warnings
from pathlib import Path

import numpy as np
from spikeinterface.core import NumpySorting, Templates, estimate_templates_with_accumulator
from spikeinterface.core.base import minimum_spike_dtype
from spikeinterface.sortingcomponents.matching import find_spikes_from_templates
from spikeinterface.sortingcomponents.matching.method_list import matching_methods
from spikeinterface.sortingcomponents.tools import clean_templates, compute_sparsity_from_peaks_and_label


def peaks_to_spikes(peaks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A spike vector (sorted by segment then sample) of the labelled peaks; outliers (-1) dropped."""
    keep = labels >= 0
    spikes = np.zeros(int(keep.sum()), dtype=minimum_spike_dtype)
    spikes["sample_index"] = peaks["sample_index"][keep]
    spikes["segment_index"] = peaks["segment_index"][keep]
    spikes["unit_index"] = labels[keep]
    return spikes


def estimate_templates(recording, peaks, labels, noise_levels, *, template_ms_before: float, template_ms_after: float,
                       template_radius_um: float, min_template_snr: float, job_kwargs: dict) -> Templates:
    """Mean templates of the labelled peaks, sparse around each unit, low-SNR units removed."""
    fs = recording.get_sampling_frequency()
    nbefore = int(round(template_ms_before * fs / 1000.0))
    nafter = int(round(template_ms_after * fs / 1000.0))
    unit_ids = np.unique(labels[labels >= 0])
    # relabel to 0..n-1 so unit_index matches unit_ids' positions
    remap = np.full(labels.max() + 1 if len(labels) else 1, -1, dtype=np.int64)
    remap[unit_ids] = np.arange(len(unit_ids))
    dense_labels = np.where(labels >= 0, remap[np.maximum(labels, 0)], -1)
    spikes = peaks_to_spikes(peaks, dense_labels)
    unit_ids = np.arange(len(unit_ids))
    sparsity, _ = compute_sparsity_from_peaks_and_label(
        peaks[dense_labels >= 0], spikes["unit_index"], unit_ids, recording, template_radius_um
    )
    # One worker: the accumulator sums each worker's chunks apart, and chunks reach workers in a varying
    # order, so with several workers the templates differed in their last bits from run to run (and so
    # could the matched spikes). One worker is also faster here: the pass is short.
    templates_array = estimate_templates_with_accumulator(
        recording, spikes, unit_ids, nbefore, nafter, return_in_uV=False, sparsity_mask=sparsity.mask,
        job_name="estimate templates", **(job_kwargs | {"n_jobs": 1}),
    )
    templates = Templates(
        templates_array=templates_array,
        sampling_frequency=fs,
        nbefore=nbefore,
        channel_ids=recording.channel_ids,
        unit_ids=unit_ids,
        sparsity_mask=sparsity.mask,
        probe=recording.get_probe(),
        is_in_uV=False,
    )
    with warnings.catch_warnings():
        # clean_templates asks SpikeInterface for peak shifts without passing a peak_sign (its own call,
        # in 0.105), which warns on every run; nothing the user could act on.
        warnings.filterwarnings("ignore", message=r"get_template_peak_shift_on_main_channel\(\) with Templates")
        return clean_templates(
            templates,
            sparsify_threshold=1.0,
            noise_levels=noise_levels,
            min_snr=min_template_snr,
            max_jitter_ms=0.2,
            remove_empty=True,
        )


# Engines whose "amplitude" is the scaling of the template fitted to each spike.
AMPLITUDE_SCALING_ENGINES = ("circus-omp", "wobble")


def find_spikes(recording, templates: Templates, peaks, unit_labels, noise_levels, *, matching_method: str,
                min_fit_z: float, folder: Path, seed: int, job_kwargs: dict) -> np.ndarray:
    """Stage 8: every spike of the templates' units, as a spike vector whose unit index is the
    template's position. With ``matching_method='none'`` the clustered peaks themselves."""
    if matching_method == "none":
        kept = np.isin(unit_labels, templates.unit_ids)
        return peaks_to_spikes(peaks, np.where(kept, np.searchsorted(templates.unit_ids, unit_labels), -1))
    shutil.rmtree(folder, ignore_errors=True)
    spikes = match_templates(recording, templates, noise_levels, matching_method=matching_method, folder=folder,
                             job_kwargs=job_kwargs)
    if matching_method in AMPLITUDE_SCALING_ENGINES:
        spikes = drop_noise_fits(spikes, templates, projection_noise(recording, templates, seed), min_fit_z)
    return spikes


def match_templates(recording, templates: Templates, noise_levels, *, matching_method: str, folder: Path,
                    job_kwargs: dict) -> np.ndarray:
    """All spikes of the templates' units in the recording (gathered to disk, flat memory)."""
    engine = matching_methods[matching_method]
    # Engines differ in what they accept: give the noise levels to those that use them.
    method_kwargs = {"noise_levels": noise_levels} if "noise_levels" in inspect.signature(engine.__init__).parameters else {}
    return find_spikes_from_templates(
        recording,
        templates,
        method=matching_method,
        method_kwargs=method_kwargs,
        pipeline_kwargs=dict(gather_mode="npy", dest=Path(folder)),
        job_kwargs=job_kwargs,
    )


def projection_noise(recording, templates: Templates, seed: int | None, n_chunks: int = 5,
                     chunk_size: int = 20_000) -> np.ndarray:
    """Robust standard deviation of each template's sliding projection on the traces.

    The projection of a stretch of traces on a template is what template matching
    thresholds; its spread over random stretches (mostly noise, robust to the spikes in
    them) says how large a fitted amplitude noise alone reaches for that template.
    """
    from scipy import fft
    from spikeinterface.core import get_random_data_chunks

    data = get_random_data_chunks(recording, num_chunks_per_segment=n_chunks, chunk_size=chunk_size,
                                  concatenated=True, return_in_uV=False, seed=seed).astype(np.float32)
    # The traces' spectrum is taken once and shared by all templates: per template, one product with
    # the reversed template's spectrum summed over its channels and one inverse transform, instead of a
    # convolution of every channel (what scipy.signal.fftconvolve would do), half the time.
    n_samples, width = len(data), templates.num_samples
    size = fft.next_fast_len(n_samples + width - 1, real=True)
    spectrum = fft.rfft(data, n=size, axis=0)
    sigma = np.zeros(len(templates.unit_ids))
    for index in range(len(templates.unit_ids)):
        channels = templates.sparsity.mask[index]
        kernel = fft.rfft(_template_on_its_channels(templates, index)[::-1], n=size, axis=0)
        projection = fft.irfft((spectrum[:, channels] * kernel).sum(axis=1), n=size)[width - 1:n_samples]
        sigma[index] = np.median(np.abs(projection - np.median(projection))) / 0.6745
    return sigma


def _template_on_its_channels(templates: Templates, index: int) -> np.ndarray:
    """(samples, channels of its sparsity mask) whether the templates are stored sparse or dense."""
    return templates.get_one_template_dense(index)[:, templates.sparsity.mask[index]]


def drop_noise_fits(spikes: np.ndarray, templates: Templates, sigma: np.ndarray, min_z: float) -> np.ndarray:
    """Matched spikes whose fit stands out of the noise: amplitude x |template|^2 >= min_z x sigma.

    Why: matching engines bound the fitted amplitude by one range for all units (circus-omp:
    >= 0.6 of the template). For a unit barely above the noise, noise alone reaches 0.6 of its
    template hundreds of times a minute, and those fits were half of such a unit's spikes.
    A bound in units of each template's own projection noise treats large and small units alike.
    """
    if min_z <= 0 or len(spikes) == 0 or "amplitude" not in spikes.dtype.names:
        return spikes
    # The same channels as projection_noise: a dense template's values off its mask are not projected.
    norms = np.array([np.sum(_template_on_its_channels(templates, i) ** 2) for i in range(len(templates.unit_ids))])
    z = spikes["amplitude"] * norms[spikes["cluster_index"]] / np.maximum(sigma[spikes["cluster_index"]], 1e-12)
    return spikes[z >= min_z]


def spikes_to_sorting(spikes: np.ndarray, unit_ids, sampling_frequency: float) -> NumpySorting:
    vector = np.zeros(spikes.size, dtype=minimum_spike_dtype)
    vector["sample_index"] = spikes["sample_index"]
    vector["unit_index"] = spikes["cluster_index"] if "cluster_index" in spikes.dtype.names else spikes["unit_index"]
    vector["segment_index"] = spikes["segment_index"]
    order = np.lexsort((vector["unit_index"], vector["sample_index"], vector["segment_index"]))
    return NumpySorting(vector[order], sampling_frequency, np.asarray(unit_ids))

