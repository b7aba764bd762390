"""A real recording, sorted end to end: the locust tetrode in ../shared/data/locust/.

Through the command line's raw-binary path (the README's command, run as written, on a
probe file written by probeinterface) and through ``run_sorter``; both must give the same
Sorting, and its units must look like neurons (few refractory-period violations).
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
from spikeinterface.core import load

from spikeinterface_deepsort.datasets import locust_tetrode

from conftest import spike_trains

ROOT = Path(__file__).resolve().parents[1]
LOCUST = ROOT.parent / "shared" / "data" / "locust"
pytestmark = pytest.mark.skipif(not (LOCUST / "info.json").exists(),
                                reason=f"the locust recording is not at {LOCUST} (shared/data beside the clone)")


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


def test_the_locust_tetrode_sorts_to_clean_units_from_the_shell(cli_sorting):
    fs = cli_sorting.get_sampling_frequency()
    assert fs == 15000.0 and cli_sorting.get_num_segments() == 1
    clean = 0
    for train in spike_trains(cli_sorting):
        isi_ms = np.diff(train) / fs * 1000.0
        clean += train.size >= 50 and (isi_ms < 1.5).mean() < 0.01
    assert clean >= 4, f"{clean} units with >= 50 spikes and < 1 % ISI violations"


def test_run_sorter_on_the_concatenated_trials_gives_the_same_sorting(cli_sorting, tmp_path):
    recording = locust_tetrode(LOCUST)
    assert recording.get_num_channels() == 4 and recording.get_total_duration() == pytest.approx(57.54, abs=0.01)
    sorting = ss.run_sorter("deepspikesort", recording, folder=tmp_path / "locust")
    assert len(sorting.unit_ids) == len(cli_sorting.unit_ids)
    for ours, theirs in zip(spike_trains(sorting), spike_trains(cli_sorting)):
        assert np.array_equal(ours, theirs)
