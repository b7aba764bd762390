import numpy as np
import pytest
import spikeinterface.core as sic

import spikeinterface_deepsort  # noqa: F401  (registers the sorter)
from spikeinterface_deepsort.datasets import make_serializable


@pytest.fixture(scope="session")
def tetrode_case(tmp_path_factory):
    """SpikeInterface's own sorter-test recording: 4 channels, 60 s, with its ground truth (serialisable)."""
    recording, sorting = sic.generate_ground_truth_recording(durations=[60.0], sampling_frequency=30000.0,
                                                             num_channels=4, num_units=5, seed=2205)
    return make_serializable(recording, sorting, tmp_path_factory.mktemp("tetrode") / "ground_truth")


@pytest.fixture(scope="session")
def small_case():
    """A short 16-channel recording for stage tests."""
    return sic.generate_ground_truth_recording(durations=[10.0], sampling_frequency=30000.0, num_channels=16,
                                               num_units=6, seed=11)


@pytest.fixture
def fast_params():
    """Sorter settings that keep a test run short (fewer DeepCluster rounds and steps)."""
    return dict(max_rounds=3, steps_per_round=40, seed=3, job_kwargs=dict(n_jobs=1, progress_bar=False))


def spike_trains(sorting):
    return [np.asarray(sorting.get_unit_spike_train(u, segment_index=s))
            for s in range(sorting.get_num_segments()) for u in sorting.unit_ids]
