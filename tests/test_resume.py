"""A run killed with SIGKILL in the middle of DeepCluster resumes and gives the uninterrupted result."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import spikeinterface.core as sic
import torch

from spikeinterface_deepsort import resume_sorting

# Rounds long enough (150 steps) that the poll below catches the run between round 2 and round 5.
SORT_ARGS = ["--param", "max_rounds=5", "--param", "nmi_stop=1.0", "--param", "steps_per_round=150",
             "--param", "merge_max_template_diff=0.0",
             "--param", "seed=4", "--param", "job_kwargs={'n_jobs': 1, 'progress_bar': False}"]


def _sort_command(recording_folder, output):
    return [sys.executable, "-m", "spikeinterface_deepsort.cli", "-q", "sort", str(recording_folder),
            "--output", str(output), *SORT_ARGS]


def _rounds_done(output) -> int:
    checkpoint = output / "sorter_output" / "deepcluster" / "deepcluster_checkpoint.pt"
    try:
        return torch.load(checkpoint, weights_only=False)["epoch"] + 1
    except Exception:  # not written yet, or being replaced
        return 0


@pytest.fixture(scope="module")
def saved_recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume") / "rec"
    recording, _ = sic.generate_ground_truth_recording(durations=[20.0], sampling_frequency=30000.0,
                                                       num_channels=8, num_units=5, seed=8)
    recording.save(folder=folder, n_jobs=1, progress_bar=False)
    return folder


def test_sigkill_mid_training_then_resume_matches_an_uninterrupted_run(saved_recording, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    killed = tmp_path / "killed"
    process = subprocess.Popen(_sort_command(saved_recording, killed), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 400
    while _rounds_done(killed) < 2 and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be killed mid-training"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    rounds_at_kill = _rounds_done(killed)
    assert 2 <= rounds_at_kill < 5
    assert not (killed / "sorter_output" / "sorting").exists()  # no half-finished result to mistake for one

    resumed = resume_sorting(killed, verbose=False)
    log = (killed / "sorter_output" / "deepspikesort.log").read_text()
    assert f"resuming after round {rounds_at_kill}" in log

    complete = tmp_path / "complete"
    result = subprocess.run(_sort_command(saved_recording, complete), env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    uninterrupted = sic.load(complete / "sorter_output" / "sorting")
    assert list(resumed.unit_ids) == list(uninterrupted.unit_ids)
    for unit in resumed.unit_ids:
        np.testing.assert_array_equal(resumed.get_unit_spike_train(unit), uninterrupted.get_unit_spike_train(unit))
