"""Which windows of the recording phase 1 classifies, and with which label.

Units are drawn at random (under the seed) among the reference units whose spike count
lies within [min, max]; their spikes, optionally subsampled, become one class each.
Noise windows become one more class: a noise window shares no sample with the snippet
window of ANY reference spike (the original phase 1 took any window that did not start
exactly on a spike, so most of its "noise" held spikes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from spikeinterface.core.node_pipeline import base_peak_dtype

from ...errors import DataFormatError, ParameterError

logger = logging.getLogger(__name__)

NOISE_LABEL = "noise"


def parse_count(value, name: str, keyword: str) -> int | None:
    """An option that is a positive count or ``keyword`` ("max", "all"); the keyword gives None."""
    if value is None or (isinstance(value, str) and value.strip().lower() == keyword):
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = -1
    if isinstance(value, bool) or count < 0 or (isinstance(value, float) and value != count):
        raise ParameterError(f"{name} must be a whole number >= 0 or {keyword!r}, got {value!r}.")
    return count


def select_units(counts: dict, min_spikes: int, max_spikes: int | None, n_units: int, rng: np.random.Generator) -> list:
    """``n_units`` unit ids drawn among those with ``min_spikes <= count <= max_spikes``, in reference order."""
    upper = np.inf if max_spikes is None else max_spikes
    eligible = [unit for unit, count in counts.items() if min_spikes <= count <= upper]
    if len(eligible) < n_units:
        shown = sorted(int(c) for c in counts.values())
        raise DataFormatError(
            f"The reference has only {len(eligible)} unit(s) with between {min_spikes} and "
            f"{'max' if max_spikes is None else max_spikes} spikes, but {n_units} were asked for "
            f"(its {len(counts)} units have {shown[:20]}{' ...' if len(shown) > 20 else ''} spikes). "
            "Ask for fewer units (--units) or widen the range (--min-spikes / --max-spikes)."
        )
    chosen = set(rng.choice(len(eligible), size=n_units, replace=False).tolist())
    return [unit for index, unit in enumerate(eligible) if index in chosen]


def inside_recording(samples: np.ndarray, num_samples: int, nbefore: int, nafter: int) -> np.ndarray:
    """Mask of the windows ``[s - nbefore, s + nafter)`` that lie wholly inside the segment."""
    return (samples >= nbefore) & (samples + nafter <= num_samples)


def spike_free_centres(spike_samples: np.ndarray, num_samples: int, nbefore: int, nafter: int) -> np.ndarray:
    """Centres of non-overlapping windows tiling the segment that overlap no spike's window.

    A spike at ``s`` occupies ``[s - nbefore, s + nafter)``; a window at ``t`` occupies
    ``[t - nbefore, t + nafter)``; they share a sample when ``s - t`` lies in
    ``(-(nbefore + nafter), nbefore + nafter)``.
    """
    width = nbefore + nafter
    centres = np.arange(nbefore, num_samples - nafter + 1, width, dtype="int64")
    spikes = np.sort(np.asarray(spike_samples, dtype="int64"))
    first = np.searchsorted(spikes, centres - width + 1, side="left")
    last = np.searchsorted(spikes, centres + width, side="left")
    return centres[first == last]


@dataclass
class LabelledWindows:
    """The windows to classify: a SpikeInterface peak vector and one class per peak."""

    peaks: np.ndarray  # base_peak_dtype, sorted by segment then sample
    labels: np.ndarray  # int64 class index, aligned with peaks
    class_names: list[str]  # unit ids as text, then "noise" when noise is used
    unit_ids: list  # the chosen reference unit ids (original type), class i = unit_ids[i]


def build_windows(
    sorting,
    num_samples: list[int],
    unit_ids: list,
    extremum_channels: dict,
    num_channels: int,
    spikes_per_unit: int | None,
    n_noise: int | None,
    nbefore: int,
    nafter: int,
    rng: np.random.Generator,
) -> LabelledWindows:
    """Peaks for the chosen units' spikes (on their template's extremum channel) and for noise.

    ``n_noise`` None means every spike-free window of the tiling; noise windows sit on a
    channel drawn at random, so that noise covers the whole probe.
    """
    spikes = sorting.to_spike_vector(concatenated=False)
    all_ids = list(sorting.unit_ids)
    peak_lists, label_lists = [], []
    for label, unit in enumerate(unit_ids):
        unit_index = all_ids.index(unit)
        segments, samples = [], []
        for segment, vector in enumerate(spikes):
            times = vector["sample_index"][vector["unit_index"] == unit_index]
            times = times[inside_recording(times, num_samples[segment], nbefore, nafter)]
            segments.append(np.full(len(times), segment))
            samples.append(times)
        segments, samples = np.concatenate(segments), np.concatenate(samples)
        if spikes_per_unit is not None and spikes_per_unit < len(samples):
            keep = np.sort(rng.choice(len(samples), size=spikes_per_unit, replace=False))
            segments, samples = segments[keep], samples[keep]
        peak_lists.append(_peaks(samples, np.full(len(samples), extremum_channels[unit]), segments))
        label_lists.append(np.full(len(samples), label))

    class_names = [str(unit) for unit in unit_ids]
    if n_noise != 0:
        noise = _noise_peaks(spikes, num_samples, num_channels, n_noise, nbefore, nafter, rng)
        peak_lists.append(noise)
        label_lists.append(np.full(len(noise), len(unit_ids)))
        class_names.append(NOISE_LABEL)

    peaks, labels = np.concatenate(peak_lists), np.concatenate(label_lists).astype("int64")
    order = np.lexsort((peaks["sample_index"], peaks["segment_index"]))
    return LabelledWindows(peaks[order], labels[order], class_names, list(unit_ids))


def _peaks(samples: np.ndarray, channels: np.ndarray, segments: np.ndarray) -> np.ndarray:
    peaks = np.zeros(len(samples), dtype=base_peak_dtype)
    peaks["sample_index"], peaks["channel_index"], peaks["segment_index"] = samples, channels, segments
    return peaks


def _noise_peaks(spikes, num_samples, num_channels, n_noise, nbefore, nafter, rng) -> np.ndarray:
    centres = [spike_free_centres(vector["sample_index"], num_samples[segment], nbefore, nafter)
               for segment, vector in enumerate(spikes)]
    segments = np.concatenate([np.full(len(c), segment) for segment, c in enumerate(centres)])
    centres = np.concatenate(centres)
    if n_noise is not None:
        if n_noise > len(centres):
            raise ParameterError(
                f"Only {len(centres)} spike-free windows exist in this recording, but {n_noise} noise samples "
                "were asked for. Ask for fewer (--noise N) or for all of them (--noise all)."
            )
        keep = np.sort(rng.choice(len(centres), size=n_noise, replace=False))
        centres, segments = centres[keep], segments[keep]
    logger.info("%d noise windows (no reference spike within a snippet window)", len(centres))
    return _peaks(centres, rng.integers(0, num_channels, size=len(centres)), segments)



def extremum_channels(recording, sorting, unit_ids: list, nbefore: int, nafter: int, rng: np.random.Generator,
                      spikes_per_template: int = 300, job_kwargs: dict | None = None) -> dict:
    """Channel index of each unit's largest template deflection (template from a random subset of its spikes)."""
    from spikeinterface.core.waveform_tools import estimate_templates_with_accumulator

    all_ids = list(sorting.unit_ids)
    spikes = sorting.to_spike_vector()
    num_samples = np.array([recording.get_num_samples(s) for s in range(recording.get_num_segments())])
    spikes = spikes[inside_recording(spikes["sample_index"], num_samples[spikes["segment_index"]], nbefore, nafter)]
    subsets = []
    for new_index, unit in enumerate(unit_ids):
        unit_spikes = spikes[spikes["unit_index"] == all_ids.index(unit)]
        size = min(spikes_per_template, len(unit_spikes))
        subset = unit_spikes[rng.choice(len(unit_spikes), size=size, replace=False)].copy()
        subset["unit_index"] = new_index
        subsets.append(subset)
    subset = np.concatenate(subsets)
    subset = subset[np.lexsort((subset["sample_index"], subset["segment_index"]))]
    templates = estimate_templates_with_accumulator(
        recording, subset, unit_ids, nbefore, nafter, return_in_uV=False, job_name="phase 1 templates",
        **(job_kwargs or {}),
    )
    peak_channels = np.abs(templates).max(axis=1).argmax(axis=1)
    return {unit: int(channel) for unit, channel in zip(unit_ids, peak_channels)}
