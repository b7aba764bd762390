"""`deepspikesort export` on the session's finished sort, and its errors naming the option to fix.

What the ALF and Phy folders hold is tested in tests/tools/export/.
"""

import json
import shutil

import numpy as np
import pytest
import spikeinterface.core as sic

from spikeinterface_deepsort.cli.main import main
from spikeinterface_deepsort.output_folders import MARKER


def _error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("deepspikesort export: error:") and len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def alf(sorter_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_export") / "alf"
    assert main(["-q", "export", str(sorter_folder), "--format", "alf", "--output", str(out)]) == 0
    return out


def test_alf_export_of_a_sorter_folder(sorter_folder, alf, capsys):
    sorting = sic.load(sorter_folder / "sorter_output" / "sorting")
    assert json.loads((alf / MARKER).read_text())["kind"] == "alf-export"
    clusters = np.load(alf / "spikes.clusters.npy")
    assert clusters.size == sorting.to_spike_vector().size and clusters.max() == len(sorting.unit_ids) - 1
    assert np.load(alf / "spikes.times.npy").max() <= 12.0


def test_an_existing_export_needs_overwrite_and_the_same_format(sorter_folder, alf, capsys):
    before = sorted(p.name for p in alf.iterdir())
    assert main(["export", str(sorter_folder), "--format", "alf", "--output", str(alf)]) == 2
    assert "Pass --overwrite to replace it" in _error(capsys)
    assert main(["export", str(sorter_folder), "--format", "phy", "--output", str(alf), "--overwrite"]) == 2
    assert "--overwrite refused" in _error(capsys)
    assert sorted(p.name for p in alf.iterdir()) == before


def test_the_sorter_folder_is_never_the_output(sorter_folder, capsys):
    assert main(["export", str(sorter_folder), "--format", "phy", "--output", str(sorter_folder), "--overwrite"]) == 2
    assert "this run's own input" in _error(capsys)
    output = sorter_folder / "sorter_output"  # inside the input: not an export folder of ours, so refused too
    assert main(["export", str(sorter_folder), "--format", "phy", "--output", str(output), "--overwrite"]) == 2
    assert "only a deepspikesort phy-export folder" in _error(capsys)
    assert (sorter_folder / "sorter_output" / "sorting").is_dir()


def test_no_binary_needs_a_recording_in_one_flat_file(sorter_folder, tmp_path, capsys):
    out = tmp_path / "phy"
    assert main(["export", str(sorter_folder), "--format", "phy", "--output", str(out), "--no-binary"]) == 2
    assert "Drop --no-binary" in _error(capsys)  # a generated recording has no file of its own
    assert not out.exists()


def test_a_sort_whose_recording_cannot_be_reloaded(sorter_folder, tmp_path, capsys):
    folder = tmp_path / "sort"
    shutil.copytree(sorter_folder / "sorter_output" / "sorting", folder / "sorter_output" / "sorting")
    (folder / "spikeinterface_recording.json").write_text('{"warning": "not serializable"}')
    assert main(["export", str(folder), "--format", "alf", "--output", str(tmp_path / "alf")]) == 2
    assert "export_to_alf(sorting, recording, output_folder)" in _error(capsys)
    assert not (tmp_path / "alf").exists()
    assert main(["export", str(tmp_path / "missing"), "--format", "alf", "--output", str(tmp_path / "alf")]) == 2
    assert "does not exist" in _error(capsys)
