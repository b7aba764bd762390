"""A real recording, sorted end to end: the locust tetrode in ../shared/data/locust/.

Through the command line's raw-binary path (the README's command, run as written, on a
probe file written by probeinterface) and through ``run_sorter``; both must find the same
units, and they must look like neurons (few refractory-period violations).
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import probeinterface as pi
import pytest
import spikeinterface.sorters as ss
from spikeinterface.comparison import compare_two_sorters
from spikeinterface.core import load

from spikeinterface_deepsort.tools.datasets import locust_tetrode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the one resolver of the team's shared data

import _common  # noqa: E402

LOCUST = _common.SHARED / "data" / "locust"
pytestmark = pytest.mark.skipif(not (LOCUST / "info.json").exists(),
                                reason=f"the locust recording is not at {LOCUST} (shared/ beside the clone, or DEEPSPIKESORT_SHARED)")


def readme_raw_binary_command() -> list[str]:
    """The README's raw-binary example, as a user would paste it."""
    line = re.search(r"^deepspikesort sort rec\.raw .*$", (ROOT / "README.md").read_text(), re.MULTILINE).group(0)
    return shlex.split(line)


@pytest.fixture(scope="module")
def cli_sorting(tmp_path_factory):
    """The README's command in a folder holding rec.raw (both trials, end to end) and probe.json."""
    folder = tmp_path_factory.mktemp("locust_cli")
    with open(folder / "rec.raw", "wb") as raw:
        for trial in sorted(LOCUST.glob("locust_trial_*.raw")):
            raw.write(trial.read_bytes())
    probe = pi.generate_tetrode()
    probe.set_device_channel_indices(np.arange(4))
    pi.write_probeinterface(folder / "probe.json", probe)
    command = readme_raw_binary_command()
    executable = Path(sys.executable).with_name(command[0])
    done = subprocess.run([str(executable), *command[1:]], cwd=folder, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    output = command[command.index("--output") + 1]
    return load(folder / output / "sorter_output" / "sorting")


def clean_units(sorting) -> list:
    """Units with >= 50 spikes and < 1 % of inter-spike intervals under 1.5 ms."""
    fs = sorting.get_sampling_frequency()
    return [unit for unit in sorting.unit_ids
            if (train := sorting.get_unit_spike_train(unit)).size >= 50 and (np.diff(train) / fs < 1.5e-3).mean() < 0.01]


def test_the_locust_tetrode_sorts_to_clean_units_from_the_shell(cli_sorting):
    assert cli_sorting.get_sampling_frequency() == 15000.0 and cli_sorting.get_num_segments() == 1
    assert len(clean_units(cli_sorting)) >= 4


def test_run_sorter_on_the_concatenated_trials_finds_the_same_units(cli_sorting, tmp_path):
    recording = locust_tetrode(LOCUST)
    assert recording.get_num_channels() == 4 and recording.get_total_duration() == pytest.approx(57.54, abs=0.01)
    sorting = ss.run_sorter("deepspikesort", recording, folder=tmp_path / "locust")
    assert len(clean_units(sorting)) >= 4
    # The same units, not only as many: every clean unit of the shell's run is found again. (Spike for
    # spike equality is not asserted: training in another process state can differ in the last digits,
    # and the recording's weakest unit then splits or not.)
    agreement = compare_two_sorters(cli_sorting, sorting, delta_time=0.4).agreement_scores
    assert all(agreement.loc[unit].max() > 0.8 for unit in clean_units(cli_sorting)), agreement.round(2)
