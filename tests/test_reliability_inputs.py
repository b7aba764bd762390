"""Bad inputs the sorter meets before it starts: each is sorted correctly or refused with the fix.

The rows already covered elsewhere (no probe, zero channels, fs < 10 kHz, too short, NaN,
duplicate locations, bad parameters, existing folder) are in test_validation.py,
test_params.py and test_sorter.py; docs/reliability.md lists them all.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import spikeinterface.core as sic
import spikeinterface.sorters as ss
from spikeinterface.generation import NoiseGeneratorRecording

from spikeinterface_deepsort.cli.main import main
from spikeinterface_deepsort.errors import OutputFolderError, RecordingError
from spikeinterface_deepsort.validation import RecordingWarning, check_output_location, check_recording

FAST = dict(max_rounds=2, steps_per_round=20, seed=0, merge_max_template_diff=0.0,
            job_kwargs=dict(n_jobs=1, progress_bar=False))


def _saved(recording, folder):
    return recording.save(folder=folder, n_jobs=1, progress_bar=False)


def _int16_recording(gain_to_uv, noise_uv=6.0, seconds=2.0, n_channels=4, seed=0):
    """An int16 recording whose true noise is ``noise_uv`` µV at 0.195 µV per bit (Intan), with the given gain."""
    rng = np.random.default_rng(seed)
    traces = np.round(rng.normal(0.0, noise_uv / 0.195, size=(int(seconds * 30000), n_channels))).astype("int16")
    recording = sic.NumpyRecording([traces], sampling_frequency=30000.0)
    recording.set_dummy_probe_from_locations(np.c_[np.zeros(n_channels), np.arange(n_channels) * 20.0])
    recording.set_channel_gains(gain_to_uv)
    recording.set_channel_offsets(0.0)
    return recording


# ---------------------------------------------------------------- one channel


def test_one_channel_recording_is_sorted(tmp_path):
    recording, _ = sic.generate_ground_truth_recording(durations=[20.0], sampling_frequency=30000.0, num_channels=4,
                                                       num_units=3, seed=5)
    one = _saved(recording.select_channels([recording.channel_ids[0]]), tmp_path / "rec")
    sorting = ss.run_sorter("deepspikesort", one, folder=tmp_path / "out", **FAST)
    assert len(sorting.unit_ids) >= 1
    spikes = sorting.to_spike_vector()
    assert spikes.size > 100
    assert spikes["sample_index"].min() >= 0 and spikes["sample_index"].max() < one.get_num_samples(0)


# ---------------------------------------------------------------- gains of an int16 recording


@pytest.mark.parametrize("gain", [0.0, -0.195, np.nan, np.inf])
def test_non_positive_or_non_finite_gain_is_refused_before_the_folder(tmp_path, gain):
    recording = _int16_recording(gain)
    with pytest.raises(RecordingError, match=r"gain_to_uV.*set_channel_gains") as error:
        ss.run_sorter("deepspikesort", recording, folder=tmp_path / "out")
    assert "> 0" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_non_finite_offset_is_refused():
    recording = _int16_recording(0.195)
    recording.set_channel_offsets(np.nan)
    with pytest.raises(RecordingError, match="offset_to_uV.*set_channel_offsets"):
        check_recording(recording)


@pytest.mark.parametrize("gain", [0.195e-6, 0.195e-3, 195.0])  # V, mV and nV per bit given as µV per bit
def test_implausible_gain_warns_with_the_fix(gain):
    with pytest.warns(RecordingWarning, match=r"noise level is .* µV.*set_channel_gains"):
        check_recording(_int16_recording(gain))


def test_right_gain_gives_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordingWarning)
        check_recording(_int16_recording(0.195))  # Intan: about 6 µV of noise
        check_recording(_int16_recording(2.34, noise_uv=10.0))  # Neuropixels 1.0 AP band


# ---------------------------------------------------------------- segments of very different lengths


def test_segments_of_very_different_lengths_are_sorted(tmp_path):
    # 20 ms then 20 s: a 1000-fold difference. Detection, noise levels and matching run per segment.
    recording, _ = sic.generate_ground_truth_recording(durations=[0.02, 20.0], sampling_frequency=30000.0,
                                                       num_channels=4, num_units=3, seed=5)
    recording = _saved(recording, tmp_path / "rec")
    sorting = ss.run_sorter("deepspikesort", recording, folder=tmp_path / "out", **FAST)
    assert sorting.get_num_segments() == 2 and len(sorting.unit_ids) >= 1
    spikes = sorting.to_spike_vector()
    assert (spikes["segment_index"] == 1).sum() > 100
    for segment in range(2):
        mine = spikes["sample_index"][spikes["segment_index"] == segment]
        assert mine.size == 0 or (mine.min() >= 0 and mine.max() < recording.get_num_samples(segment))


# ---------------------------------------------------------------- recordings the sorter folder cannot hold


def test_unserialisable_recording_is_refused_before_the_folder(tmp_path):
    recording, _ = sic.generate_ground_truth_recording(durations=[2.0], num_channels=4, seed=0)  # in-memory sorting
    with pytest.raises(RecordingError, match=r"serialisable.*recording.save\(folder="):
        ss.run_sorter("deepspikesort", recording, folder=tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- output location


@pytest.fixture(scope="module")
def tiny_recording(tmp_path_factory):
    recording = NoiseGeneratorRecording(num_channels=4, sampling_frequency=30000.0, durations=[1.0], seed=0)
    recording.set_dummy_probe_from_locations(np.c_[np.zeros(4), np.arange(4) * 20.0])
    return recording  # lazy and JSON-serialisable


def test_output_whose_parent_is_a_file_is_refused(tiny_recording, tmp_path):
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(OutputFolderError, match=r"notes.txt is a file, not a folder.*Choose"):
        ss.run_sorter("deepspikesort", tiny_recording, folder=tmp_path / "notes.txt" / "out")
    assert (tmp_path / "notes.txt").read_text() == "a file"


def test_cli_output_whose_parent_is_a_file_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("a file")
    result = subprocess.run([sys.executable, "-m", "spikeinterface_deepsort.cli", "sort", str(tmp_path),
                             "--output", str(tmp_path / "notes.txt" / "out")], capture_output=True, text=True)
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if "Warning" not in line]
    assert len(lines) == 1 and "is a file, not a folder" in lines[0]


def test_not_enough_disk_for_the_preprocessing_cache_is_refused(tmp_path):
    # 384 channels for 30 days: a lazy recording whose float32 cache (~12 TB) no test disk can hold.
    huge = NoiseGeneratorRecording(num_channels=384, sampling_frequency=30000.0, durations=[30 * 86400.0],
                                       seed=0)
    huge.set_dummy_probe_from_locations(np.c_[np.zeros(384), np.arange(384) * 20.0])
    with pytest.raises(OutputFolderError, match=r"Not enough free disk space.*preprocessing cache.*GiB.*Free some space"):
        ss.run_sorter("deepspikesort", huge, folder=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    check_output_location(tmp_path / "out", huge, cache_preprocessing="memory")  # nothing on disk: no refusal


def _mount_tmpfs(path, options):
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {result.stderr.decode().strip()}")


@pytest.fixture
def mounted(tmp_path):
    """Mount real small file systems (a full disk, a read-only one) under tmp_path; unmounted afterwards."""
    mounts = []

    def mount(name, options):
        path = tmp_path / name
        _mount_tmpfs(path, options)
        mounts.append(path)
        return path

    yield mount
    for path in mounts:
        subprocess.run(["umount", str(path)], check=False)


def test_full_disk_is_refused_before_the_run(tiny_recording, mounted, capsys):
    disk = mounted("full", "size=1m")
    (disk / "filler").write_bytes(b"\0" * 512 * 1024)
    with pytest.raises(OutputFolderError, match=r"Not enough free disk space.*MiB free.*another disk"):
        ss.run_sorter("deepspikesort", tiny_recording, folder=disk / "out")
    assert not (disk / "out").exists()
    assert main(["sort", str(disk), "--output", str(disk / "out")]) == 2
    assert "Not enough free disk space" in capsys.readouterr().err


def test_read_only_disk_is_refused_before_the_run(tiny_recording, mounted):
    disk = mounted("readonly", "ro,size=1m")
    with pytest.raises(OutputFolderError, match=r"read-only file system.*writable disk"):
        ss.run_sorter("deepspikesort", tiny_recording, folder=disk / "out")
