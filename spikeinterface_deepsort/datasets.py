"""Generated ground-truth recordings used by the demo, the tests and the benchmarks.

All come from SpikeInterface's generators, so every result can be reproduced offline.
SpikeInterface 0.105's generated recordings hold their spike trains in memory and so
cannot be handed to ``run_sorter`` (which serialises the recording); with ``folder``,
only the ground-truth spike trains are saved there and the recording is rebuilt lazily
on the saved copy, which serialises, instead of writing the whole traces to disk.
"""

from __future__ import annotations

from pathlib import Path

import spikeinterface.core as sic


def make_serializable(recording, gt_sorting, folder: str | Path):
    """(recording, sorting) equal to the inputs, with the sorting saved in ``folder``."""
    saved = gt_sorting.save(folder=Path(folder), overwrite=True)
    # Same generator class (static or drifting templates), now reading the saved spike trains.
    lazy = type(recording)(**{**recording._kwargs, "sorting": saved})
    lazy.set_probe(recording.get_probe(), in_place=True)
    for key in ("gain_to_uV", "offset_to_uV"):
        if recording.get_property(key) is not None:
            lazy.set_property(key, recording.get_property(key))
    return lazy, saved


def ground_truth_recording(num_channels: int = 32, num_units: int = 20, duration: float = 60.0,
                           sampling_frequency: float = 30000.0, seed: int = 42, folder: str | Path | None = None):
    """The REFERENCE §4 case (32 channels, 20 units, 60 s, seed 42) by default; returns (recording, sorting)."""
    recording, sorting = sic.generate_ground_truth_recording(
        durations=[duration], sampling_frequency=sampling_frequency, num_channels=num_channels,
        num_units=num_units, seed=seed,
    )
    return make_serializable(recording, sorting, folder) if folder is not None else (recording, sorting)
