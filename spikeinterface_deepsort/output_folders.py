"""The one rule for folders this package writes, and may later replace.

A folder is replaced (``--overwrite``, ``remove_existing_folder=True``, ``overwrite=True``)
only when it is provably one of ours: it carries the marker file :data:`MARKER`, written
when we created the folder, naming its kind ("sorter", "demo", "phy-export", ...); it holds
nothing that we did not write; and it neither is nor contains any of the run's inputs (the
recording's files, the sorter folder an export reads). Anything else is refused with a
message that says why and what to do. Names never decide: a user's folder called
``sorter_output`` is still the user's.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from .version import __version__
from .errors import OutputFolderError

MARKER = "deepspikesort_folder.json"

# Top-level entries (names or glob patterns) that a folder of each kind may hold besides the
# marker, when the marker does not list them itself (content known only as the run goes).
LAYOUTS = {
    "sorter": {"spikeinterface_params.json", "spikeinterface_log.json", "spikeinterface_recording.json",
               "recording_attributes.json",
               "spikeinterface_recording.pickle", "sorter_output", "report", "in_container_sorting",
               "si_folder.json", "spikeinterface_info.json"},
    "demo": {"ground_truth", "sorting", "score.json", "accuracy_vs_snr.png", "agreement_matrix.png"},
    "classification-session": {"session.json", "snippets", "training_log.csv", "training_curves.png",
                               "confusion_matrix.csv", "confusion_matrix.png", "metrics.json", "comparison.csv",
                               "checkpoint.pt", "checkpoint.pt.tmp"},
    "report": {"index.html", "quality_metrics.csv", "unit_labels.csv", "analyzer", "bombcell", "interactive",
               "unit_templates*.png", "amplitudes*.png", "isi_histograms*.png", "autocorrelograms*.png",
               "unit_locations.png", "deepcluster_history.png", "embedding.png"},
    "comparison": {"agreement.csv", "agreement_matrix.csv", "agreement_matrix.png", "summary.json",
                   "performance.csv"},
}


def mark_folder(folder, kind: str, contents=None) -> None:
    """Write our marker into ``folder``: its kind and, when known, the entries we wrote in it."""
    record = {"written_by": "spikeinterface-deepsort", "version": __version__, "kind": kind}
    if contents is not None:
        record["contents"] = sorted(contents)
    path = Path(folder) / MARKER
    tmp = path.with_name(MARKER + ".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)


def _read_marker(folder) -> dict | None:
    """Our marker's record in ``folder``, or None when it has no readable marker of ours."""
    try:
        record = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("written_by") == "spikeinterface-deepsort" else None


def folder_kind(folder) -> str | None:
    """The kind our marker gives ``folder``, or None when it has no readable marker of ours."""
    record = _read_marker(folder)
    return None if record is None else record.get("kind")


def recording_paths(recording) -> list[Path]:
    """Files and folders that ``recording`` (or any recording it is built on) reads from."""
    from spikeinterface.core.core_tools import _get_paths_list

    try:
        paths = _get_paths_list(recording.to_dict(recursive=True))
    except Exception:  # a recording that cannot describe itself reads from no file we could protect
        return []
    return [Path(p) for p in paths]


def _overlap(folder: Path, inputs) -> Path | None:
    """An input that is ``folder`` or lies inside it. (An output folder inside a recording's folder,
    as Kilosort writes by default, leaves the recording's files alone and is allowed.)"""
    for path in inputs:
        path = Path(path).absolute().resolve()
        if path == folder or folder in path.parents:
            return path
    return None


def _foreign_entries(folder: Path, kind: str) -> list[str]:
    listed = (_read_marker(folder) or {}).get("contents")
    allowed = set(listed) if listed is not None else LAYOUTS.get(kind, set())
    return sorted(entry.name for entry in folder.iterdir()
                  if entry.name != MARKER and not any(fnmatch.fnmatchcase(entry.name, rule) for rule in allowed))


def check_writable_output(folder, *, overwrite: bool, kind: str, inputs=(), option: str = "--overwrite") -> None:
    """Raise :class:`OutputFolderError` unless ``folder`` may be written by a run of ``kind``.

    Allowed: a folder that does not exist or is empty; with ``overwrite``, also a folder of
    ours of the same kind that holds nothing else. Never one that is, holds or lies inside
    one of ``inputs``. ``option`` is how the caller's user says "overwrite" (a shell option
    or a Python argument), so that the message speaks their language. Creates nothing.
    """
    folder = Path(folder).absolute().resolve()
    clash = _overlap(folder, inputs)
    if clash is not None:
        raise OutputFolderError(
            f"The output folder {folder} is or holds this run's own input {clash}, which must not be replaced. "
            "Choose another output folder (a new one, or one inside the recording's folder)."
        )
    if not folder.exists():
        return
    if not folder.is_dir():
        raise OutputFolderError(f"The output folder {folder} is a file, not a folder. Choose another output folder.")
    if not any(folder.iterdir()):
        return
    found = folder_kind(folder)
    if not overwrite:
        what = f"a previous deepspikesort {found} folder" if found else "files"
        fix = f"Pass {option} to replace it, or choose" if found == kind else "Choose"
        raise OutputFolderError(f"The output folder {folder} already exists and holds {what}. {fix} another output folder.")
    if found != kind:
        what = f"a deepspikesort {found} folder, not a {kind} folder" if found else "files that deepspikesort did not write"
        raise OutputFolderError(
            f"{option} refused: {folder} holds {what}, and only a deepspikesort {kind} folder (marked by its "
            f"{MARKER}) is ever replaced. Choose another output folder, or move those files away yourself."
        )
    foreign = _foreign_entries(folder, kind)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise OutputFolderError(
            f"{option} refused: {folder} is a deepspikesort {kind} folder but also holds files deepspikesort did not "
            f"write ({shown}). Move them out of it, or choose another output folder."
        )


def remove_own_folder(folder, *, kind: str, inputs=(), option: str = "--overwrite") -> None:
    """Delete ``folder`` after :func:`check_writable_output` has shown it to be ours (or it is empty)."""
    folder = Path(folder)
    check_writable_output(folder, overwrite=True, kind=kind, inputs=inputs, option=option)
    if folder.exists():
        shutil.rmtree(folder)


@contextmanager
def atomic_output(folder, *, kind: str, overwrite: bool, inputs=(), option: str = "--overwrite"):
    """Write a whole output folder, or nothing.

    Yields a temporary sibling path (not yet created) to write into. On success the marker
    is written there, listing what was written, and the folder takes ``folder``'s place (an
    old folder of ours is replaced only after :func:`check_writable_output`). On any error the
    temporary folder is removed and ``folder`` is left as it was.
    """
    folder = Path(folder).absolute()
    check_writable_output(folder, overwrite=overwrite, kind=kind, inputs=inputs, option=option)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of this same process id and folder: ours
    try:
        yield tmp
        tmp.mkdir(exist_ok=True)
        mark_folder(tmp, kind, contents=[entry.name for entry in tmp.iterdir()])
        if folder.exists():
            old = folder.with_name(f".{folder.name}.replaced-{os.getpid()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old)
        else:
            os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
