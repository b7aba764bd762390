"""Faults during a run: read errors, a crash while the result is written, devices that are not there.

No mocks of SpikeInterface or PyTorch: the faulty recording is a real BaseRecording whose
reads fail the way a truncated file or a dying disk does. SIGKILL then resume is in
test_resume.py, a corrupted checkpoint in test_training.py.
"""

import errno
import json

import numpy as np
import pytest
import spikeinterface.core as sic
import spikeinterface.sorters as ss
import torch
from spikeinterface.core import BaseRecording, BaseRecordingSegment, BaseSorting, BaseSortingSegment
from spikeinterface.sorters.utils import SpikeSortingError

from spikeinterface_deepsort.cli.main import main
from spikeinterface_deepsort.errors import ParameterError, RecordingError
from spikeinterface_deepsort.pipeline import run_deepspikesort
from spikeinterface_deepsort.run_folder import LOG_NAME, RunFolder

FAST = dict(max_rounds=2, steps_per_round=20, seed=0, merge_max_template_diff=0.0,
            job_kwargs=dict(n_jobs=1, progress_bar=False))


class FaultySegment(BaseRecordingSegment):
    def __init__(self, parent, readable_frames, read_budget):
        BaseRecordingSegment.__init__(self, **parent.get_times_kwargs())
        self.parent, self.readable_frames, self.read_budget, self.frames_read = parent, readable_frames, read_budget, 0

    def get_num_samples(self):
        return self.parent.get_num_samples()

    def get_traces(self, start_frame, end_frame, channel_indices):
        if self.readable_frames is not None and end_frame > self.readable_frames:
            raise OSError(errno.EIO, f"Input/output error reading frames {start_frame}-{end_frame} "
                                     f"(the file ends at frame {self.readable_frames})")
        self.frames_read += end_frame - start_frame
        if self.read_budget is not None and self.frames_read > self.read_budget:
            raise OSError(errno.EIO, f"Input/output error after {self.read_budget} frames read (the disk failed)")
        return self.parent.get_traces(start_frame, end_frame, channel_indices)


class FaultyRecording(BaseRecording):
    """``recording`` whose reads fail beyond frame ``readable_frames`` (a truncated file), or once
    ``read_budget`` frames have been read (a disk that dies partway through the run)."""

    def __init__(self, recording, readable_frames=None, read_budget=None):
        BaseRecording.__init__(self, recording.get_sampling_frequency(), recording.channel_ids, recording.get_dtype())
        recording.copy_metadata(self)
        for segment in recording._recording_segments:
            self.add_recording_segment(FaultySegment(segment, readable_frames, read_budget))
        self._kwargs = dict(recording=recording, readable_frames=readable_frames, read_budget=read_budget)


@pytest.fixture(scope="module")
def recording_folder(tmp_path_factory):
    recording, _ = sic.generate_ground_truth_recording(durations=[15.0], sampling_frequency=30000.0, num_channels=4,
                                                       num_units=3, seed=5)
    folder = tmp_path_factory.mktemp("faults") / "rec"
    recording.save(folder=folder, n_jobs=1, progress_bar=False)
    return folder


@pytest.fixture(scope="module")
def saved_recording(recording_folder):
    return sic.load(recording_folder)


def test_truncated_file_is_refused_before_the_folder(saved_recording, tmp_path):
    truncated = FaultyRecording(saved_recording, readable_frames=10 * 30000)
    with pytest.raises(RecordingError, match=r"could not be read at segment 0.*truncated.*frame_slice"):
        ss.run_sorter("deepspikesort", truncated, folder=tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists()


def test_read_error_partway_fails_with_the_log_and_finished_stages_kept(saved_recording, tmp_path):
    n = saved_recording.get_num_samples(0)
    # No preprocessing cache: every stage reads the recording again, and the disk dies after about four
    # passes, once detection, snippets, DeepCluster and units are done (in the templates stage).
    dying = FaultyRecording(saved_recording, read_budget=4 * n)
    assert dying.check_serializability("json")
    folder = tmp_path / "out"
    with pytest.raises(SpikeSortingError, match="Input/output error"):
        ss.run_sorter("deepspikesort", dying, folder=folder, cache_preprocessing="off", **FAST)

    log = json.loads((folder / "spikeinterface_log.json").read_text())
    assert log["error"] is True and "Input/output error" in "\n".join(log["error_trace"])
    output = folder / "sorter_output"
    text = (output / LOG_NAME).read_text()
    started = [line.split("stage ")[1].split(":")[0] for line in text.splitlines() if ": started" in line]
    done = [line.split("stage ")[1].split(":")[0] for line in text.splitlines() if ": done" in line]
    assert started[-1] not in done, text  # the log names the stage that was running when the read failed
    assert started[-1] in ("snippets", "templates", "matching"), text
    assert {"preprocessing", "detection"} <= set(done)
    assert json.loads((output / "stages.json").read_text()).keys() == set(done)
    stage_files = {"detection": ["peaks.npy", "noise_levels.npy"], "snippets": ["snippets"],
                   "deepcluster": ["deepcluster/deepcluster_checkpoint.pt"], "units": ["peak_labels.npy"]}
    for stage in done:  # every finished stage's files are kept
        for name in stage_files.get(stage, []):
            assert (output / name).exists(), name
    assert not (output / "sorting").exists()


class _FailingSortingSegment(BaseSortingSegment):
    def __init__(self, trains, fail_unit):
        BaseSortingSegment.__init__(self)
        self.trains, self.fail_unit = trains, fail_unit

    def get_unit_spike_train(self, unit_id, start_frame, end_frame):
        if unit_id == self.fail_unit:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.trains[unit_id]


class FailingSorting(BaseSorting):
    """A Sorting whose writing fails partway (at its last unit), as on a disk that fills up."""

    def __init__(self, trains, fail_unit):
        BaseSorting.__init__(self, 30000.0, list(trains))
        self.add_sorting_segment(_FailingSortingSegment(trains, fail_unit))


def test_a_crash_while_writing_the_result_leaves_no_sorting_that_loads(tmp_path):
    trains = {0: np.array([10, 500, 900]), 1: np.array([40, 700]), 2: np.array([60])}
    run = RunFolder(tmp_path)
    folder = run.sorting_path
    with pytest.raises(OSError, match="No space left"):
        run.save_sorting(FailingSorting(trains, fail_unit=2))
    assert not folder.exists()

    previous = run.save_sorting(sic.NumpySorting.from_unit_dict([trains], 30000.0))
    with pytest.raises(OSError, match="No space left"):
        run.save_sorting(FailingSorting({0: np.array([1]), 1: np.array([2]), 2: np.array([3])}, 2))
    kept = sic.load(folder)  # the earlier complete result is untouched
    assert list(kept.unit_ids) == list(previous.unit_ids)
    np.testing.assert_array_equal(kept.get_unit_spike_train(0), trains[0])


no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


@pytest.mark.parametrize("device, fragment", [
    pytest.param("cuda", "sees no CUDA GPU.*device='cpu'", marks=no_gpu),
    pytest.param("cuda:1", "sees no CUDA GPU", marks=no_gpu),
    ("tpu", r"Unknown device 'tpu': use one of"),
])
def test_unavailable_device_is_refused_before_any_work(saved_recording, tmp_path, device, fragment):
    with pytest.raises(ParameterError, match=fragment):
        run_deepspikesort(saved_recording, tmp_path / "direct", dict(FAST, device=device), verbose=False)
    assert not (tmp_path / "direct").exists()
    with pytest.raises(ParameterError, match=fragment):
        ss.run_sorter("deepspikesort", saved_recording, folder=tmp_path / "via_run_sorter", **dict(FAST, device=device))
    # SpikeInterface creates the run folder before the sorter sees its parameters; a run that cannot start
    # removes it again (it was made moments ago, and is ours).
    assert not (tmp_path / "via_run_sorter").exists()


@no_gpu
def test_cli_cuda_without_gpu_is_one_line(recording_folder, tmp_path, capsys):
    code = main(["-q", "sort", str(recording_folder), "--output", str(tmp_path / "out"),
                 "--param", "device='cuda'"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "sees no CUDA GPU" in err, err
