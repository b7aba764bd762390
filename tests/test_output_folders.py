"""The one rule for replacing folders: only ours, only what we wrote, never an input."""

import json

import pytest
from helpers import tree_snapshot

from spikeinterface_deepsort.errors import OutputFolderError
from spikeinterface_deepsort.output_folders import (
    MARKER,
    atomic_output,
    check_writable_output,
    folder_kind,
    mark_folder,
    remove_own_folder,
)


@pytest.fixture
def user_folder(tmp_path):
    folder = tmp_path / "my_folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes")
    (folder / "sub" / "analysis.py").write_text("print('mine')")
    return folder


def test_absent_and_empty_folders_may_be_written(tmp_path):
    check_writable_output(tmp_path / "new", overwrite=False, kind="sorter")
    (tmp_path / "empty").mkdir()
    check_writable_output(tmp_path / "empty", overwrite=False, kind="sorter")


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_users_folder_is_refused_and_left_as_it_was(user_folder, overwrite):
    before = tree_snapshot(user_folder)
    with pytest.raises(OutputFolderError, match="did not write|already exists"):
        remove_own_folder(user_folder, kind="sorter") if overwrite else \
            check_writable_output(user_folder, overwrite=False, kind="sorter")
    assert tree_snapshot(user_folder) == before


def test_a_named_like_ours_folder_without_marker_is_refused(tmp_path):
    folder = tmp_path / "sorter_output"
    (folder / "sorter_output").mkdir(parents=True)
    (folder / "spikeinterface_params.json").write_text("{}")
    with pytest.raises(OutputFolderError, match="did not write"):
        check_writable_output(folder, overwrite=True, kind="sorter")


def test_our_folder_is_replaced_only_when_asked_and_only_when_it_holds_nothing_else(tmp_path):
    folder = tmp_path / "run"
    (folder / "sorter_output").mkdir(parents=True)
    mark_folder(folder, "sorter")
    assert folder_kind(folder) == "sorter"
    with pytest.raises(OutputFolderError, match="--overwrite to replace it"):
        check_writable_output(folder, overwrite=False, kind="sorter")
    with pytest.raises(OutputFolderError, match="not a demo folder"):
        check_writable_output(folder, overwrite=True, kind="demo")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="notes.txt"):
        remove_own_folder(folder, kind="sorter")
    assert (folder / "notes.txt").read_text() == "mine"
    (folder / "notes.txt").unlink()
    remove_own_folder(folder, kind="sorter")
    assert not folder.exists()


def test_a_folder_that_is_or_holds_an_input_is_refused(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "rec.bin").write_bytes(b"\0" * 16)
    mark_folder(folder, "sorter", contents=["rec.bin"])  # even one of ours
    for inputs in ([folder / "rec.bin"], [folder]):
        with pytest.raises(OutputFolderError, match="own input"):
            check_writable_output(folder, overwrite=True, kind="sorter", inputs=inputs)
    # An output folder inside the recording's folder leaves the recording alone.
    check_writable_output(folder / "sorted", overwrite=False, kind="sorter", inputs=[folder / "rec.bin"])


def test_atomic_output_leaves_nothing_after_a_failure_and_keeps_the_old_folder(tmp_path):
    target = tmp_path / "export"
    with atomic_output(target, kind="phy-export", overwrite=False) as tmp:
        tmp.mkdir()
        (tmp / "params.py").write_text("first")
    assert json.loads((target / MARKER).read_text())["contents"] == ["params.py"]
    with pytest.raises(RuntimeError):
        with atomic_output(target, kind="phy-export", overwrite=True) as tmp:
            tmp.mkdir()
            (tmp / "params.py").write_text("second")
            raise RuntimeError("the export failed halfway")
    assert (target / "params.py").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no partial folder left beside it
    with atomic_output(target, kind="phy-export", overwrite=True) as tmp:
        tmp.mkdir()
        (tmp / "params.py").write_text("third")
    assert (target / "params.py").read_text() == "third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
