"""The SpikeInterface sorter class: a thin shell around :func:`run_deepspikesort`."""

from __future__ import annotations

import json
from pathlib import Path

from spikeinterface.core import load
from spikeinterface.sorters.internal.si_based import ComponentsBasedSorter

from .version import __version__
from .params import SORTER_PARAMS
from .pipeline import run_deepspikesort
from .run_folder import SORTER_OUTPUT, RunFolder
from .errors import OutputFolderError, ParameterError, RecordingError
from .output_folders import check_writable_output, folder_kind, mark_folder, recording_paths, remove_own_folder
from .validation import check_output_location, check_recording


class DeepSpikeSortSorter(ComponentsBasedSorter):
    """DeepSpikeSort: DeepCluster-trained CNN features, HDBSCAN units, SpikeInterface template matching."""

    sorter_name = "deepspikesort"
    compiled_name = None
    _default_params = SORTER_PARAMS.defaults()
    _params_description = SORTER_PARAMS.descriptions()
    gpu_capability = "nvidia-optional"
    requires_locations = True
    handle_multi_segment = True
    installation_mesg = "\tpip install spikeinterface-deepsort\n"
    sorter_description = __doc__

    @classmethod
    def get_sorter_version(cls):
        return __version__

    @classmethod
    def use_gpu(cls, params) -> bool:
        return params.get("device", "auto") != "cpu"

    @classmethod
    def initialize_folder(cls, recording, output_folder, verbose, remove_existing_folder):
        # Our checks first: their messages say how to fix the recording or the output location,
        # and nothing is created on disk for a run that cannot start.
        check_recording(recording)
        if not (recording.check_serializability("json") or recording.check_serializability("pickle")):
            raise RecordingError(
                "The recording cannot be written to the sorter folder (it is neither JSON- nor pickle-serialisable, "
                "e.g. a generated or in-memory recording). Save it first: "
                "recording = recording.save(folder='my_recording'), then sort the saved one."
            )
        # Nothing a user made is removed: SpikeInterface's own rule would delete any folder given
        # with remove_existing_folder=True. Only an empty folder, or one of our sorter folders that
        # holds nothing else and not the recording itself, gets past this check.
        folder = Path(output_folder if output_folder is not None else cls.sorter_name + "_output")
        check_writable_output(folder, overwrite=remove_existing_folder, kind="sorter",
                              inputs=recording_paths(recording), option="remove_existing_folder=True")
        # SpikeInterface creates the folder before the parameters reach the sorter, so the disk
        # check assumes the default cache_preprocessing (on disk): refusing here leaves nothing behind.
        check_output_location(folder, recording)
        folder = super().initialize_folder(recording, folder, verbose, remove_existing_folder=True)
        mark_folder(folder, "sorter")
        return folder

    @classmethod
    def set_params_to_folder(cls, recording, output_folder, new_params, verbose):
        # Our message (with "did you mean") before SpikeInterface's list of names; and as
        # initialize_folder made this folder moments ago, a run that cannot start leaves nothing.
        try:
            SORTER_PARAMS.validate(new_params)
        except ParameterError:
            remove_own_folder(output_folder, kind="sorter")
            raise
        return super().set_params_to_folder(recording, output_folder, new_params, verbose)

    @classmethod
    def _check_params(cls, recording, output_folder, params):
        return SORTER_PARAMS.validate(params)

    @classmethod
    def _run_from_folder(cls, sorter_output_folder, params, verbose):
        recording = cls.load_recording_from_folder(Path(sorter_output_folder).parent, with_warnings=False)
        # initialize_folder checked this recording before the folder existed (resume_sorting: at the first run).
        run_deepspikesort(recording, sorter_output_folder, params, verbose=verbose, check_input=False)
        run = RunFolder(sorter_output_folder)
        run.make_loadable_by_spikeinterface()
        if params["make_report"]:
            from .tools.report import make_report

            with run.logging_to_file(verbose), run.stage("report"):
                make_report(run.output_folder, recording=recording, verbose=verbose)

    @classmethod
    def _get_result_from_folder(cls, sorter_output_folder):
        return load(Path(sorter_output_folder) / "sorting")


def resume_sorting(output_folder, verbose: bool = True, params: dict | None = None, recording=None,
                   force: bool = False):
    """Continue an interrupted ``run_sorter("deepspikesort", ..., folder=output_folder)``.

    Finished stages are read back from the sorter folder; DeepCluster continues from its
    last finished round. A finished run is returned as it is, without running again.
    The run keeps the parameters and the recording it was started with: ``params`` (names
    and values the caller expects) or a ``recording`` that differ from the folder's are
    refused, naming what differs, unless ``force=True`` (the folder's own are then used).
    Returns the Sorting, like ``run_sorter``.
    """
    output_folder = Path(output_folder)
    all_params = check_resumable(output_folder)
    differences = _parameter_differences(all_params["sorter_params"], params or {})
    if recording is not None:
        differences += _recording_differences(DeepSpikeSortSorter.load_recording_from_folder(output_folder,
                                                                                             with_warnings=False), recording)
    if differences and not force:
        raise OutputFolderError(
            f"The run in {output_folder} was started with other settings: {'; '.join(differences)}. A resumed run "
            "keeps its own. Start a new run in another folder, or resume with the folder's settings anyway "
            "(--force on the command line, force=True in Python)."
        )
    if RunFolder(output_folder / SORTER_OUTPUT).is_finished():
        return DeepSpikeSortSorter.get_result_from_folder(output_folder)
    all_params["sorter_params"]["resume"] = True
    (output_folder / "spikeinterface_params.json").write_text(json.dumps(all_params, indent=4))
    DeepSpikeSortSorter.run_from_folder(output_folder, raise_error=True, verbose=verbose)
    return DeepSpikeSortSorter.get_result_from_folder(output_folder)


def check_resumable(output_folder) -> dict:
    """SpikeInterface's saved settings of the deepspikesort run in ``output_folder``; or
    :class:`OutputFolderError` when it holds none (checked before any recording is loaded)."""
    params_file = Path(output_folder) / "spikeinterface_params.json"
    if not params_file.exists():
        raise OutputFolderError(f"{output_folder} holds no deepspikesort run to resume (no spikeinterface_params.json). "
                                "Give the folder of the interrupted run (--output on the command line), or start a "
                                "new run without --resume.")
    all_params = json.loads(params_file.read_text())
    if all_params.get("sorter_name") != DeepSpikeSortSorter.sorter_name or folder_kind(output_folder) not in (None, "sorter"):
        raise OutputFolderError(f"{output_folder} was written by {all_params.get('sorter_name')!r}, not deepspikesort.")
    return all_params


# Settings that do not change the Sorting (how the work is spread, progress bars, the resume flag itself).
_NOT_COMPARED_ON_RESUME = ("job_kwargs", "resume")


def _parameter_differences(saved: dict, expected: dict) -> list[str]:
    checked = SORTER_PARAMS.validate({k: v for k, v in expected.items() if k not in _NOT_COMPARED_ON_RESUME})
    return [f"{name} is {saved.get(name)!r} there, {checked[name]!r} here" for name in expected
            if name not in _NOT_COMPARED_ON_RESUME and saved.get(name) != checked[name]]


def _recording_fingerprint(recording) -> dict:
    return {
        "sampling frequency": recording.get_sampling_frequency(),
        "channel ids": [str(c) for c in recording.channel_ids],
        "samples per segment": [recording.get_num_samples(s) for s in range(recording.get_num_segments())],
        "files": sorted(str(p.absolute().resolve()) for p in recording_paths(recording)),
    }


def _recording_differences(saved, given) -> list[str]:
    if saved is None:
        return []  # the folder could not keep its recording: nothing to compare against
    before, now = _recording_fingerprint(saved), _recording_fingerprint(given)
    return [f"the recording's {key} differ ({_short(before[key])} there, {_short(now[key])} here)"
            for key in before if before[key] != now[key]]


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
