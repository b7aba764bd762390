"""A generated recording and its true sorting, so that phase 1 can be tried without data."""

from __future__ import annotations

import numpy as np
from spikeinterface.core import generate_ground_truth_recording


def demo_recording_and_reference(seed: int = 0, duration_s: float = 60.0, num_units: int = 10,
                                 firing_rates: tuple[float, float] = (5.0, 40.0)):
    """A 32-channel, 30 kHz recording whose units fire at evenly spread rates.

    With the default 60 s and 5-40 Hz the units have about 300 to 2,400 spikes, so that
    phase 1's default range of 1,000-5,000 spikes holds several of them.
    """
    rates = np.linspace(firing_rates[0], firing_rates[1], num_units)
    return generate_ground_truth_recording(
        durations=[duration_s],
        sampling_frequency=30000.0,
        num_channels=32,
        num_units=num_units,
        generate_sorting_kwargs=dict(firing_rates=rates, refractory_period_ms=4.0),
        seed=seed,
    )
