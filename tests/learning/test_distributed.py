"""DeepCluster under torchrun: two CPU processes with the gloo backend."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import spikeinterface.core as sic
from spikeinterface.comparison import compare_sorter_to_ground_truth

from spikeinterface_deepsort.learning.distributed import gather_in_order, shard


def test_shard_and_gather_are_inverse_without_torchrun():
    indices = np.arange(11)
    local, per_rank = shard(indices)
    assert per_rank == 11 and np.array_equal(local, indices)
    assert np.array_equal(gather_in_order(local[:, None] * 2, 11)[:, 0], indices * 2)


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
                    reason="torchrun is not installed with this PyTorch")
def test_torchrun_two_processes_gives_a_valid_sorting(tmp_path):
    recording, gt = sic.generate_ground_truth_recording(durations=[30.0], sampling_frequency=30000.0,
                                                        num_channels=8, num_units=5, seed=21)
    recording.save(folder=tmp_path / "rec", n_jobs=1, progress_bar=False)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    command = [torchrun, "--standalone", "--nproc_per_node=2", "-m", "spikeinterface_deepsort.cli.torchrun",
               str(tmp_path / "rec"), "--output", str(tmp_path / "out"),
               "--param", "max_rounds=3", "--param", "steps_per_round=40", "--param", "device=cpu",
               "--param", "merge_max_template_diff=0.0",  # no numba compile in the fresh processes
               "--param", "job_kwargs={'n_jobs': 1, 'progress_bar': False}"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    sorting = sic.load(tmp_path / "out" / "sorter_output" / "sorting")
    history = (tmp_path / "out" / "sorter_output" / "deepcluster" / "deepcluster_history.csv").read_text()
    assert history.count("\n") >= 3  # header + at least two rounds trained by both ranks
    perf = compare_sorter_to_ground_truth(gt, sorting, exhaustive_gt=True).get_performance()
    assert len(sorting.unit_ids) > 0 and perf["accuracy"].mean() > 0.6
