"""Synthetic stand-ins for the private microneurography files A2, A3, A4, A12 and A21.

Each file gets the row and class counts of the original. Every track (fibre) has its own
spike shape, drawn with SpikeInterface's single-waveform generator (depolarisation,
repolarisation and recovery phases, smoothed) around a shape common to the file; how far
the tracks' shapes and amplitudes stray from that common shape (``separation``) sets how
hard the file is, tuned so that a good classifier lands near the accuracies reported for
the originals (A2 ~0.95, A3 ~0.91, A4 ~0.71, A12 ~0.32, A21 ~0.76). Each waveform then
gets amplitude and sub-sample timing jitter, a baseline offset and coloured noise, as a
microelectrode picks up.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from spikeinterface.core.generate import generate_single_fake_waveform

from ...output_folders import check_writable_output, mark_folder
from .loader import LABEL_COLUMN

SAMPLING_FREQUENCY = 10_000.0
MS_BEFORE, MS_AFTER = 1.0, 2.0  # 10 + 20 = 30 samples, as in the original files
MICROVOLTS = 40.0  # typical peak amplitude of a microneurography spike
NOISE_STD = 0.2  # noise standard deviation, relative to the peak amplitude
NOISE_CORRELATION = 0.6  # AR(1) coefficient: electrode noise is low-pass, not white

# Ranges of the waveform generator's parameters (ms, or relative amplitude).
SHAPE_RANGES = {
    "positive_amplitude": (0.1, 0.6),
    "depolarization_ms": (0.1, 0.3),
    "repolarization_ms": (0.3, 0.7),
    "recovery_ms": (0.4, 1.1),
    "smooth_ms": (0.03, 0.08),
}


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    tracks: dict[str, int]  # track name -> number of rows
    separation: float  # 0: all tracks share the file's common shape; 1: they span each parameter's whole range


DATASET_SPECS = (
    DatasetSpec("A2", {"Track1": 268, "Track2": 268}, 0.75),
    DatasetSpec("A3", {"Track1": 173, "Track3": 173}, 0.65),
    DatasetSpec("A4", {"Track1": 647, "Track2": 632, "Track4": 687}, 0.60),
    DatasetSpec("A12", {f"Track{i}": 322 for i in (1, 2, 3, 5, 8, 15)}, 0.33),
    DatasetSpec("A21", {"Track2": 218, "Track7": 308}, 0.45),
)


def _spec_rng(spec: DatasetSpec, seed: int) -> np.random.Generator:
    # Each file's draws depend on its name, so adding or reordering files changes nothing else.
    return np.random.default_rng([seed, zlib.crc32(spec.name.encode())])


def _track_shapes(spec: DatasetSpec, rng: np.random.Generator) -> list[tuple[np.ndarray, float]]:
    """One (waveform with a negative peak of -1, amplitude factor) per track.

    Along every parameter the tracks sit evenly spaced (in shuffled order) around the
    file's common value, so the difficulty follows ``separation`` and the number of
    tracks rather than the luck of the draw.
    """
    n_tracks = len(spec.tracks)
    spacing = np.linspace(-1.0, 1.0, n_tracks)
    common = {key: rng.uniform(low, high) for key, (low, high) in SHAPE_RANGES.items()}
    offsets = {key: rng.permutation(spacing) * spec.separation * (high - low) / 2 for key, (low, high) in SHAPE_RANGES.items()}
    amplitudes = 1.0 + rng.permutation(spacing) * spec.separation / 2
    shapes = []
    for track in range(n_tracks):
        params = {
            key: float(np.clip(common[key] + offsets[key][track], low, high)) for key, (low, high) in SHAPE_RANGES.items()
        }
        waveform = generate_single_fake_waveform(
            sampling_frequency=SAMPLING_FREQUENCY, ms_before=MS_BEFORE, ms_after=MS_AFTER, negative_amplitude=-1.0, **params
        ).astype(np.float64)
        shapes.append((waveform, float(amplitudes[track])))
    return shapes


def _coloured_noise(rng: np.random.Generator, n_rows: int, n_samples: int) -> np.ndarray:
    white = rng.normal(size=(n_rows, n_samples + 20))
    noise = np.empty_like(white)
    noise[:, 0] = white[:, 0]
    for t in range(1, white.shape[1]):
        noise[:, t] = NOISE_CORRELATION * noise[:, t - 1] + white[:, t]
    noise = noise[:, 20:]  # drop the burn-in so every sample has the stationary variance
    return noise / noise.std() * NOISE_STD


def _jittered(waveform: np.ndarray, rng: np.random.Generator, n_rows: int) -> np.ndarray:
    time = np.arange(waveform.size, dtype=np.float64)
    shifts = rng.uniform(-0.5, 0.5, n_rows)  # the detector aligns spikes to the nearest sample only
    gains = rng.normal(1.0, 0.08, n_rows)
    return np.stack([gain * np.interp(time + shift, time, waveform) for shift, gain in zip(shifts, gains)])


def make_dataset(spec: DatasetSpec, seed: int = 0) -> pd.DataFrame:
    """The file's table: unnamed index, columns '0'..'29', then 'track'; rows shuffled."""
    rng = _spec_rng(spec, seed)
    rows, labels = [], []
    for (track, count), (waveform, amplitude) in zip(spec.tracks.items(), _track_shapes(spec, rng)):
        rows.append(amplitude * _jittered(waveform, rng, count))
        labels += [track] * count
    clean = np.concatenate(rows)
    noisy = clean + _coloured_noise(rng, *clean.shape) + rng.normal(0.0, 0.05, (clean.shape[0], 1))
    order = rng.permutation(clean.shape[0])
    table = pd.DataFrame(np.round(noisy[order] * MICROVOLTS, 3), columns=[str(i) for i in range(clean.shape[1])])
    table[LABEL_COLUMN] = np.asarray(labels)[order]
    return table


def write_csv_datasets(folder: str | Path, seed: int = 0, specs: tuple[DatasetSpec, ...] = DATASET_SPECS) -> list[Path]:
    """Write one ``<name>.csv`` per spec into ``folder``; return their paths."""
    folder = Path(folder)
    # Real datasets carry these same names (A2.csv ...): a folder that holds anything is refused.
    check_writable_output(folder, overwrite=False, kind="csv-datasets")
    folder.mkdir(parents=True, exist_ok=True)
    mark_folder(folder, "csv-datasets", contents=[f"{spec.name}.csv" for spec in specs])
    paths = []
    for spec in specs:
        path = folder / f"{spec.name}.csv"
        make_dataset(spec, seed).to_csv(path, index=True)
        paths.append(path)
    return paths
