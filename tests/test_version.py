"""The package's one version: pyproject reads it, the installed metadata, the CLI and our folders' markers carry it."""

import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import spikeinterface_deepsort
from spikeinterface_deepsort.cli.main import main
from spikeinterface_deepsort.output_folders import MARKER, folder_kind, mark_folder
from spikeinterface_deepsort.version import __version__

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def test_pyproject_reads_the_version_from_the_package():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads(PYPROJECT.read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "spikeinterface_deepsort.version.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", __version__)


def test_installed_metadata_and_the_package_agree():
    assert spikeinterface_deepsort.__version__ == __version__
    assert version("spikeinterface-deepsort") == __version__


def test_the_cli_and_the_folder_marker_carry_the_version(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"deepspikesort {__version__}"
    mark_folder(tmp_path, "report")
    record = json.loads((tmp_path / MARKER).read_text())
    assert record["version"] == __version__ and record["written_by"] == "spikeinterface-deepsort"
    assert folder_kind(tmp_path) == "report"


def test_the_sorts_marker_carries_the_version(sorter_folder):
    assert json.loads((sorter_folder / MARKER).read_text())["version"] == __version__
