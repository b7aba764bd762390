"""Loading reference sortings (Phy/Kilosort, ALF, SpikeInterface) and checking them against a recording."""

import numpy as np
import pytest
from spikeinterface.core import NumpySorting, generate_ground_truth_recording

from spikeinterface_deepsort.errors import DataFormatError, RecordingError
from spikeinterface_deepsort.evaluation.classification.references import (
    check_reference_matches_recording,
    detect_reference_format,
    load_sorting,
)

FS = 30000.0


@pytest.fixture(scope="module")
def generated():
    return generate_ground_truth_recording(durations=[5.0], sampling_frequency=FS, num_channels=4, num_units=3, seed=3)


def write_phy_folder(folder, samples, clusters, sample_rate=FS):
    """The files read_phy needs, as Kilosort writes them."""
    folder.mkdir()
    np.save(folder / "spike_times.npy", np.asarray(samples, dtype="uint64")[:, None])
    np.save(folder / "spike_clusters.npy", np.asarray(clusters, dtype="int32"))
    (folder / "params.py").write_text(
        f"dat_path = 'recording.dat'\nn_channels_dat = 4\ndtype = 'int16'\noffset = 0\n"
        f"sample_rate = {sample_rate}\nhp_filtered = False\n"
    )
    return folder


def test_phy_folder_is_detected_and_read(tmp_path):
    folder = write_phy_folder(tmp_path / "ks", [100, 200, 300, 400], [0, 1, 0, 1])
    assert detect_reference_format(folder) == "phy"
    sorting = load_sorting(folder)
    assert sorting.get_sampling_frequency() == FS
    assert list(sorting.get_unit_spike_train(0)) == [100, 300]


def test_alf_times_in_seconds_become_samples(tmp_path):
    folder = tmp_path / "alf"
    folder.mkdir()
    np.save(folder / "spikes.times.npy", np.array([0.5, 0.01, 1.0]))
    np.save(folder / "spikes.clusters.npy", np.array([2, 0, 2]))
    assert detect_reference_format(folder) == "alf"
    sorting = load_sorting(folder, sampling_frequency=20000.0)
    assert sorting.get_sampling_frequency() == 20000.0
    assert list(sorting.get_unit_spike_train(2)) == [10000, 20000]
    assert list(sorting.get_unit_spike_train(0)) == [200]


def test_alf_samples_are_preferred_to_times(tmp_path):
    folder = tmp_path / "alf"
    folder.mkdir()
    np.save(folder / "spikes.times.npy", np.array([9.0, 9.5]))  # session clock: not the probe's samples
    np.save(folder / "spikes.samples.npy", np.array([300, 600]))
    np.save(folder / "spikes.clusters.npy", np.array([1, 1]))
    assert list(load_sorting(folder).get_unit_spike_train(1)) == [300, 600]


def test_alf_with_mismatched_files_is_refused(tmp_path):
    folder = tmp_path / "alf"
    folder.mkdir()
    np.save(folder / "spikes.times.npy", np.array([0.1, 0.2, 0.3]))
    np.save(folder / "spikes.clusters.npy", np.array([0, 1]))
    with pytest.raises(DataFormatError, match="same sorting"):
        load_sorting(folder)


def test_saved_spikeinterface_sorting_is_read(tmp_path, generated):
    _, sorting = generated
    sorting.save(folder=tmp_path / "saved")
    assert detect_reference_format(tmp_path / "saved") == "spikeinterface"
    loaded = load_sorting(tmp_path / "saved")
    assert list(loaded.unit_ids) == list(sorting.unit_ids)
    assert np.array_equal(loaded.get_unit_spike_train(sorting.unit_ids[0]), sorting.get_unit_spike_train(sorting.unit_ids[0]))


def test_saved_recording_is_not_taken_for_a_sorting(tmp_path, generated):
    recording, _ = generated
    recording.save(folder=tmp_path / "recording", progress_bar=False)
    with pytest.raises(DataFormatError, match="not a sorting"):
        load_sorting(tmp_path / "recording")


@pytest.mark.parametrize("make", ["missing", "empty folder"])
def test_unknown_reference_is_refused_with_the_expected_layouts(tmp_path, make):
    path = tmp_path / "reference"
    if make == "empty folder":
        path.mkdir()
    with pytest.raises(DataFormatError, match="Kilosort/Phy"):
        load_sorting(path)


def test_mismatched_sampling_frequency_is_refused(generated):
    recording, _ = generated
    sorting = NumpySorting.from_samples_and_labels([np.array([10, 20])], [np.array([0, 0])], 25000.0)
    with pytest.raises(RecordingError, match="25000.0 Hz but the recording at 30000.0 Hz"):
        check_reference_matches_recording(recording, sorting)


def test_spikes_beyond_the_recording_are_refused(generated):
    recording, _ = generated
    beyond = recording.get_num_samples() + 5
    sorting = NumpySorting.from_samples_and_labels([np.array([10, beyond])], [np.array([0, 0])], FS)
    with pytest.raises(RecordingError, match="outside the recording"):
        check_reference_matches_recording(recording, sorting)


def test_matching_reference_passes(generated):
    recording, sorting = generated
    check_reference_matches_recording(recording, sorting)


def test_run_sorter_output_folder_is_detected(tmp_path):
    (tmp_path / "sorter_output").mkdir()
    (tmp_path / "spikeinterface_log.json").write_text("{}")
    assert detect_reference_format(tmp_path) == "sorter_folder"
