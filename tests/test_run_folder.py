"""The sorter folder: stage results cached for resume, atomic saves, the seed, the stage timer, locate."""

import json

import numpy as np
import pytest
import spikeinterface.core as sic

from spikeinterface_deepsort.errors import OutputFolderError
from spikeinterface_deepsort.run_folder import LOG_NAME, RunFolder


def test_a_stage_result_is_computed_once_and_read_back_on_resume(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(5)

    RunFolder(tmp_path).cached_array("peaks", compute)
    np.testing.assert_array_equal(RunFolder(tmp_path, resume=True).cached_array("peaks", compute), np.arange(5))
    RunFolder(tmp_path).cached_array("peaks", compute)  # without resume: computed again
    assert len(calls) == 2 and not list(tmp_path.glob("*.tmp.npy"))


def test_the_seed_is_read_back_only_when_resuming(tmp_path):
    RunFolder(tmp_path).save_seed(1234)
    assert RunFolder(tmp_path, resume=True).saved_seed() == 1234
    assert RunFolder(tmp_path).saved_seed() is None
    assert RunFolder(tmp_path / "new", resume=True).saved_seed() is None


def test_the_run_seed_is_the_saved_one_for_readers_of_a_finished_sort(tmp_path):
    # The report and torchrun's other ranks use the seed the sort ran with, also one drawn for seed=None.
    RunFolder(tmp_path).save_seed(987654)
    assert RunFolder(tmp_path).run_seed() == 987654
    assert RunFolder(tmp_path / "never_sorted").run_seed() == 0


def test_stage_timer_and_log(tmp_path):
    run = RunFolder(tmp_path)
    with run.logging_to_file(verbose=False):
        with run.stage("detection"):
            pass
        with run.stage("snippets"):
            pass
    assert set(json.loads((tmp_path / "stages.json").read_text())) == {"detection", "snippets"}
    assert "stage snippets: done" in (tmp_path / LOG_NAME).read_text()


def test_stage_durations_survive_a_run_killed_while_writing_them(tmp_path, monkeypatch):
    """stages.json is replaced whole: a kill mid-write (here: the replace failing) leaves the previous file,
    which a resumed run reads (a truncated one made resume_sorting fail with a JSONDecodeError)."""
    import os

    run = RunFolder(tmp_path)
    with run.stage("detection"):
        pass
    before = (tmp_path / "stages.json").read_text()

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        with run.stage("snippets"):
            pass
    monkeypatch.undo()
    assert (tmp_path / "stages.json").read_text() == before
    with RunFolder(tmp_path, resume=True).stage("snippets"):
        pass
    assert set(json.loads((tmp_path / "stages.json").read_text())) == {"detection", "snippets"}


def test_empty_sorting_is_saved_with_a_warning(tmp_path):
    recording = sic.generate_recording(num_channels=2, durations=[1.0])
    with pytest.warns(UserWarning, match="too quiet"):
        sorting = RunFolder(tmp_path).save_empty_sorting(recording, "too quiet")
    assert len(sorting.unit_ids) == 0 and sorting.get_sampling_frequency() == recording.get_sampling_frequency()


def test_locate_accepts_either_folder_and_names_what_to_pass(tmp_path):
    with pytest.raises(OutputFolderError, match="does not exist"):
        RunFolder.locate(tmp_path / "missing")
    with pytest.raises(OutputFolderError, match="no finished deepspikesort sort"):
        RunFolder.locate(tmp_path)
    run = RunFolder(tmp_path / "sorter_output")
    run.path.mkdir()
    run.save_sorting(sic.NumpySorting.from_unit_dict([{0: np.array([5, 50])}], 30000.0))
    assert RunFolder.locate(tmp_path).path == run.path == RunFolder.locate(run.path).path
    assert RunFolder.locate(tmp_path).saved_params()["seed"] == 0  # the defaults where SpikeInterface saved none
    assert not run.is_finished()  # no SpikeInterface log says so
    with pytest.raises(OutputFolderError, match="holds no saved recording"):
        run.load_recording()


def test_an_unsaved_recording_is_explained_with_the_option_to_pass(tmp_path):
    (tmp_path / "spikeinterface_recording.json").write_text('{"warning": "not serializable"}')
    with pytest.raises(OutputFolderError, match="not serialisable.*--recording"):
        RunFolder(tmp_path / "sorter_output").load_recording()
