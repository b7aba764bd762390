"""What importing the package does to the process: the sorter registered, OpenMP waiting passively."""

import os
import subprocess
import sys

import pytest


def imported_wait_policy(preset: str | None) -> str:
    """OMP_WAIT_POLICY in a fresh interpreter after ``import spikeinterface_deepsort``, and the
    policy torch's OpenMP runtime then runs with (libgomp reads it when torch loads it)."""
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if preset is not None:
        env["OMP_WAIT_POLICY"] = preset
    code = ("import os, spikeinterface_deepsort, spikeinterface.sorters as ss; "
            "assert 'deepspikesort' in ss.sorter_dict; print(os.environ['OMP_WAIT_POLICY'])")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("preset, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_wait_passively_unless_the_user_chose(preset, expected):
    assert imported_wait_policy(preset) == expected
