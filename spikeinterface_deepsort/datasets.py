"""Generated ground-truth recordings used by the demo, the tests and the benchmarks.

All come from SpikeInterface's generators, so every result can be reproduced offline.
"""

from __future__ import annotations

import spikeinterface.core as sic


def ground_truth_recording(num_channels: int = 32, num_units: int = 20, duration: float = 60.0,
                           sampling_frequency: float = 30000.0, seed: int = 42):
    """The REFERENCE §4 case (32 channels, 20 units, 60 s, seed 42) by default; returns (recording, sorting)."""
    return sic.generate_ground_truth_recording(
        durations=[duration], sampling_frequency=sampling_frequency, num_channels=num_channels,
        num_units=num_units, seed=seed,
    )


def tetrode_recording(duration: float = 60.0, num_units: int = 8, seed: int = 7):
    """A 4-channel recording on a tetrode-like square (SpikeInterface's 2x2 generated probe)."""
    return sic.generate_ground_truth_recording(
        durations=[duration], sampling_frequency=30000.0, num_channels=4, num_units=num_units, seed=seed,
    )
