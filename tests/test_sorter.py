"""SpikeInterface's sorter contract, exercised through run_sorter as a user would."""

import json

import numpy as np
import pytest
import spikeinterface.core as sic
import spikeinterface.sorters as ss
from spikeinterface.comparison import compare_sorter_to_ground_truth

from spikeinterface_deepsort import DeepSpikeSortSorter, resume_sorting
from spikeinterface_deepsort.errors import ParameterError, RecordingError


def test_registered_on_import():
    assert "deepspikesort" in ss.available_sorters()
    assert "deepspikesort" in ss.installed_sorters()
    assert ss.sorter_dict["deepspikesort"] is DeepSpikeSortSorter
    defaults = ss.get_default_sorter_params("deepspikesort")
    descriptions = ss.get_sorter_params_description("deepspikesort")
    assert set(defaults) == set(descriptions) and "device" in defaults and "seed" in defaults


def test_sorter_contract_on_the_generated_tetrode(tetrode_case, tmp_path, fast_params):
    recording, gt = tetrode_case
    sorting = ss.run_sorter("deepspikesort", recording, folder=tmp_path / "out", **fast_params)
    assert set(sorting.sorting_info) >= {"recording", "params", "log"}
    assert sorting.sorting_info["params"]["sorter_params"]["seed"] == fast_params["seed"]
    assert (tmp_path / "out" / "sorter_output" / "sorting").is_dir()
    log = json.loads((tmp_path / "out" / "spikeinterface_log.json").read_text())
    assert log["error"] is False and any("stage deepcluster: done" in line for line in log["runtime_trace"])
    perf = compare_sorter_to_ground_truth(gt, sorting, exhaustive_gt=True).get_performance()
    # Four of the five units have an SNR above 15 and must be found; the fifth (SNR 2) is at the noise.
    assert (perf["accuracy"].astype(float) > 0.95).sum() >= 4, perf

    sorting = ss.run_sorter("deepspikesort", recording, folder=tmp_path / "deleted", delete_output_folder=True,
                            **fast_params)
    assert not (tmp_path / "deleted" / "sorter_output").exists()
    for name in ("spikeinterface_recording.json", "spikeinterface_params.json", "spikeinterface_log.json"):
        assert (tmp_path / "deleted" / name).exists()


def test_existing_folder_is_not_overwritten_without_the_flag(tetrode_case, tmp_path):
    recording, _ = tetrode_case
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="already exists"):
        ss.run_sorter("deepspikesort", recording, folder=folder)
    assert (folder / "precious.txt").read_text() == "keep me"


def test_bad_parameters_are_refused_before_sorting(tetrode_case, tmp_path):
    recording, _ = tetrode_case
    with pytest.raises(ParameterError, match="detect_threshold"):
        ss.run_sorter("deepspikesort", recording, folder=tmp_path / "x", detect_threshold="five")
    with pytest.raises(ParameterError, match="Unknown parameter 'no_such_parameter'"):
        ss.run_sorter("deepspikesort", recording, folder=tmp_path / "y", no_such_parameter=1)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # a run that cannot start leaves nothing


def test_recording_without_locations_is_refused_with_the_fix(tmp_path):
    recording = sic.NumpyRecording([np.zeros((30000, 4), "float32")], sampling_frequency=30000.0)
    with pytest.raises(RecordingError, match="set_probe"):
        ss.run_sorter("deepspikesort", recording, folder=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_resume_refuses_a_folder_without_a_run(tmp_path):
    with pytest.raises(ValueError, match="no deepspikesort run"):
        resume_sorting(tmp_path)
