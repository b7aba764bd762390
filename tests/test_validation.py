import numpy as np
import pytest
import spikeinterface.core as sic

from spikeinterface_deepsort.errors import RecordingError
from spikeinterface_deepsort.validation import check_recording


def _numpy_recording(traces, fs=30000.0, locations=True):
    recording = sic.NumpyRecording([traces], sampling_frequency=fs)
    if locations:
        n = traces.shape[1]
        recording.set_dummy_probe_from_locations(np.c_[np.zeros(n), np.arange(n) * 20.0])
    return recording


def test_a_good_recording_passes(small_case):
    check_recording(small_case[0])


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: _numpy_recording(np.zeros((30000, 4), "float32"), locations=False), "set_probe"),
        (lambda: _numpy_recording(np.zeros((30000, 0), "float32"), locations=False), "no channels"),
        (lambda: _numpy_recording(np.zeros((30000, 4), "float32"), fs=5000.0), "below"),
        (lambda: _numpy_recording(np.zeros((100, 4), "float32")), "shorter than one spike snippet"),
    ],
)
def test_unsortable_recordings_are_refused(make, fragment):
    with pytest.raises(RecordingError, match=fragment):
        check_recording(make())


def test_nan_samples_are_reported_with_their_position():
    traces = np.zeros((60000, 4), "float32")
    traces[:, 2] = np.nan
    with pytest.raises(RecordingError, match="NaN or inf") as error:
        check_recording(_numpy_recording(traces))
    assert "channel" in str(error.value)


def test_duplicate_channel_locations_cannot_reach_the_sorter():
    # probeinterface refuses duplicate contacts when the probe is attached, with a message naming them,
    # so the sorter never sees such a recording; this pins that upstream guarantee.
    with pytest.raises(ValueError, match="Contact positions must be unique"):
        _numpy_recording(np.zeros((30000, 3), "float32"), locations=False).set_dummy_probe_from_locations(
            np.array([[0, 0], [0, 20], [0, 20]], dtype=float)
        )


def test_not_a_recording_is_refused():
    with pytest.raises(RecordingError, match="SpikeInterface recording"):
        check_recording(np.zeros((10, 4)))
