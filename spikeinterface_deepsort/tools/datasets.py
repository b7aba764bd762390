"""Generated ground-truth recordings used by the demo, the tests and the benchmarks.

All come from SpikeInterface's generators, so every result can be reproduced offline.
SpikeInterface 0.105's generated recordings hold their spike trains in memory and so
cannot be handed to ``run_sorter`` (which serialises the recording); with ``folder``,
only the ground-truth spike trains are saved there and the recording is rebuilt lazily
on the saved copy, which serialises, instead of writing the whole traces to disk.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import spikeinterface.core as sic


def make_serializable(recording, gt_sorting, folder: str | Path):
    """(recording, sorting) equal to the inputs, with the sorting saved in ``folder``."""
    with warnings.catch_warnings():  # a generated sorting has no provenance to record: expected, not news
        warnings.filterwarnings("ignore", message="The extractor is not serializable")
        saved = gt_sorting.save(folder=Path(folder), overwrite=True)
    # Same generator class (static or drifting templates), now reading the saved spike trains.
    lazy = type(recording)(**{**recording._kwargs, "sorting": saved})
    lazy.set_probe(recording.get_probe())  # in place (SpikeInterface >= 0.105)
    for key in ("gain_to_uV", "offset_to_uV"):
        if recording.get_property(key) is not None:
            lazy.set_property(key, recording.get_property(key))
    return lazy, saved


def ground_truth_recording(num_channels: int = 32, num_units: int = 20, duration: float = 60.0,
                           sampling_frequency: float = 30000.0, seed: int = 42,
                           firing_rates: tuple[float, float] | None = None, folder: str | Path | None = None):
    """(recording, sorting) from SpikeInterface's generator; by default the sorter's reference case
    (32 channels, 20 units, 60 s, seed 42). ``firing_rates=(low, high)`` spreads the units' rates
    evenly over that range (else SpikeInterface's 15 Hz), with SpikeInterface's 4 ms refractory period."""
    rates = 15.0 if firing_rates is None else np.linspace(firing_rates[0], firing_rates[1], num_units)
    recording, sorting = sic.generate_ground_truth_recording(
        durations=[duration], sampling_frequency=sampling_frequency, num_channels=num_channels,
        num_units=num_units, generate_sorting_kwargs=dict(firing_rates=rates, refractory_period_ms=4.0), seed=seed,
    )
    return make_serializable(recording, sorting, folder) if folder is not None else (recording, sorting)


def locust_tetrode(data_folder: str | Path):
    """The real locust antennal-lobe tetrode (C. Pouzat, zenodo 21589; tridesclous's example data).

    ``data_folder`` holds ``locust_trial_01.raw`` and ``locust_trial_02.raw`` (int16, 4 channels
    interleaved, 15 kHz) and their ``info.json``. The two trials are concatenated into one
    segment. The tetrode's geometry is not part of the data: probeinterface's nominal tetrode
    stands in for it, wired in file order.
    """
    import json

    import probeinterface as pi

    data_folder = Path(data_folder)
    info = json.loads((data_folder / "info.json").read_text())
    trials = sorted(data_folder.glob("locust_trial_*.raw"))
    recording = sic.concatenate_recordings([
        sic.read_binary(path, sampling_frequency=info["sample_rate"], dtype=info["dtype"],
                        num_channels=info["shape"][1]) for path in trials
    ])
    probe = pi.generate_tetrode()
    probe.set_device_channel_indices(range(recording.get_num_channels()))
    recording.set_probe(probe)
    return recording
