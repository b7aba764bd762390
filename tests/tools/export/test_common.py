"""What both exports share: the sorter folder read back, what the caller gave resolved to a
(sorting, recording) pair, the inputs to protect, and where a recording's samples lie in a file."""

import shutil

import numpy as np
import pytest
import spikeinterface.core as sic

from spikeinterface_deepsort.errors import RecordingError
from spikeinterface_deepsort.tools.export import export_to_alf
from spikeinterface_deepsort.tools.export.common import (_inputs, _original_binary, _resolve, _segment_offsets,
                                                         _write_params_py, load_sorter_folder)

FS = 30000.0


def _same_spikes(a, b):
    assert list(a.unit_ids) == list(b.unit_ids)
    for unit in a.unit_ids:
        np.testing.assert_array_equal(a.get_unit_spike_train(unit), b.get_unit_spike_train(unit))


def test_load_sorter_folder_gives_the_sorting_and_the_sorted_recording(sorter_folder):
    saved = sic.load(sorter_folder / "sorter_output" / "sorting")
    for folder in (sorter_folder, sorter_folder / "sorter_output"):
        sorting, recording = load_sorter_folder(folder)
        _same_spikes(sorting, saved)
        assert recording.get_num_channels() == 8 and recording.get_total_duration() == pytest.approx(12.0)


def test_a_sorter_folder_without_its_recording_needs_one_given(sorter_folder, tmp_path):
    folder = tmp_path / "sort"
    shutil.copytree(sorter_folder / "sorter_output" / "sorting", folder / "sorter_output" / "sorting")
    (folder / "spikeinterface_log.json").write_text('{"error": false}')
    (folder / "spikeinterface_recording.json").write_text('{"warning": "not serializable"}')
    sorting, recording = load_sorter_folder(folder)
    assert recording is None and len(sorting.unit_ids) > 0
    with pytest.raises(RecordingError, match="pass recording="):
        _resolve(str(folder), None)
    _, sorted_recording = load_sorter_folder(sorter_folder)
    resolved, given, found_folder = _resolve(folder, sorted_recording)
    assert given is sorted_recording and found_folder == folder
    _same_spikes(resolved, sorting)


def test_resolve_takes_a_sorting_its_recording_or_a_saved_sorting(export_case, tmp_path):
    recording, sorting = export_case
    bare = sic.NumpySorting.from_sorting(sorting)
    with pytest.raises(RecordingError, match="pass recording="):
        _resolve(bare, None)
    bare.register_recording(recording)
    assert _resolve(bare, None) == (bare, recording, None)  # the recording registered with the sorting
    saved = sorting.save(folder=tmp_path / "saved_sorting")
    loaded, given, folder = _resolve(tmp_path / "saved_sorting", recording)  # a saved Sorting: not a sorter folder
    _same_spikes(loaded, saved)
    assert given is recording and folder is None
    two = sic.generate_ground_truth_recording(durations=[1.0, 1.0], num_channels=4, num_units=2, seed=1)
    with pytest.raises(RecordingError, match="1 segment.*the sorting 2"):
        _resolve(two[1], recording)


def test_export_needs_a_recording(export_case, tmp_path):
    _, sorting = export_case
    bare = sic.NumpySorting.from_sorting(sorting)
    with pytest.raises(RecordingError):
        export_to_alf(bare, None, tmp_path / "alf")
    assert not (tmp_path / "alf").exists()


def test_the_inputs_to_protect_are_the_recordings_files_and_the_sorter_folder(tmp_path):
    recording = sic.generate_recording(num_channels=4, durations=[1.0], seed=0).save(folder=tmp_path / "rec")
    sorting = sic.NumpySorting.from_unit_dict([{0: np.array([10, 20])}], FS)
    inputs = [p.resolve() for p in _inputs(sorting, recording, tmp_path / "sort")]
    assert (tmp_path / "sort").resolve() in inputs
    assert any(tmp_path / "rec" in [p, *p.parents] for p in inputs)


def test_a_binary_folder_lies_in_one_flat_file(tmp_path):
    recording = sic.generate_recording(num_channels=5, durations=[1.0], seed=0).save(folder=tmp_path / "rec")
    layout = _original_binary(recording)
    assert layout["dtype"] == "float32" and layout["n_channels_dat"] == 5 and layout["offset"] == 0
    np.testing.assert_array_equal(layout["channel_map"], np.arange(5))
    samples = np.fromfile(layout["dat_path"], dtype=layout["dtype"]).reshape(-1, layout["n_channels_dat"])
    np.testing.assert_array_equal(samples, recording.get_traces())


def test_a_raw_file_with_a_header_gives_its_offset(tmp_path):
    traces = np.random.default_rng(0).integers(-500, 500, size=(3000, 4)).astype("int16")
    path = tmp_path / "rec.dat"
    path.write_bytes(b"H" * 100 + traces.tobytes())
    recording = sic.read_binary(path, sampling_frequency=FS, dtype="int16", num_channels=4, file_offset=100)
    layout = _original_binary(recording)
    assert layout["dat_path"] == str(path.absolute()) and layout["dtype"] == "int16" and layout["offset"] == 100
    data = np.memmap(layout["dat_path"], dtype=layout["dtype"], mode="r", offset=layout["offset"]).reshape(-1, 4)
    np.testing.assert_array_equal(data, recording.get_traces())


def test_recordings_that_are_not_one_flat_file_have_no_layout(tmp_path):
    traces = np.zeros((3000, 4), dtype="int16")
    (tmp_path / "a.dat").write_bytes(traces.tobytes())
    (tmp_path / "b.dat").write_bytes(traces.tobytes())
    flat = sic.read_binary(tmp_path / "a.dat", sampling_frequency=FS, dtype="int16", num_channels=4)
    two_segments = sic.read_binary([tmp_path / "a.dat", tmp_path / "b.dat"], sampling_frequency=FS, dtype="int16",
                                   num_channels=4)
    channel_first = sic.read_binary(tmp_path / "a.dat", sampling_frequency=FS, dtype="int16", num_channels=4,
                                    time_axis=1)
    generated = sic.generate_recording(num_channels=4, durations=[1.0])
    assert _original_binary(flat) is not None
    for recording in (two_segments, channel_first, generated, flat.select_channels(flat.channel_ids[:2])):
        assert _original_binary(recording) is None, recording


def test_params_py_without_a_data_file_says_no_raw_data(tmp_path):
    recording = sic.generate_recording(num_channels=6, durations=[1.0], sampling_frequency=FS)
    _write_params_py(tmp_path / "params.py", None, recording)
    params = {}
    exec((tmp_path / "params.py").read_text(), params)
    assert params["dat_path"] == "" and params["n_channels_dat"] == 6 and params["dtype"] == "float32"
    assert params["sample_rate"] == FS and params["offset"] == 0
    assert params["hp_filtered"] is recording.is_filtered()


def test_segments_are_put_end_to_end():
    recording = sic.generate_recording(num_channels=2, durations=[1.0, 0.5, 2.0], sampling_frequency=FS)
    sorting = sic.NumpySorting.from_unit_dict([{0: np.array([5])}] * 3, FS)
    assert sorting.get_num_segments() == 3
    samples, times = _segment_offsets(sorting, recording)
    np.testing.assert_array_equal(samples, [0, 30000, 45000])
    np.testing.assert_allclose(times, [0.0, 1.0, 1.5])
