"""The SpikeInterface sorter class: a thin shell around :func:`run_deepspikesort`."""

from __future__ import annotations

from pathlib import Path

from spikeinterface.core import load
from spikeinterface.sorters.internal.si_based import ComponentsBasedSorter

from . import __version__
from .params import SORTER_PARAMS
from .pipeline import run_deepspikesort
from .errors import RecordingError
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
        # SpikeInterface creates the folder before the parameters reach the sorter, so the disk
        # check assumes the default cache_preprocessing='auto' (on disk beyond 512 MiB): refusing
        # here leaves nothing behind.
        folder = output_folder if output_folder is not None else cls.sorter_name + "_output"
        check_output_location(folder, recording, cache_preprocessing="auto")
        return super().initialize_folder(recording, output_folder, verbose, remove_existing_folder)

    @classmethod
    def _check_params(cls, recording, output_folder, params):
        return SORTER_PARAMS.validate(params)

    @classmethod
    def _run_from_folder(cls, sorter_output_folder, params, verbose):
        recording = cls.load_recording_from_folder(Path(sorter_output_folder).parent, with_warnings=False)
        # initialize_folder checked this recording before the folder existed (resume_sorting: at the first run).
        run_deepspikesort(recording, sorter_output_folder, params, verbose=verbose, check_input=False)

    @classmethod
    def _get_result_from_folder(cls, sorter_output_folder):
        return load(Path(sorter_output_folder) / "sorting")


def resume_sorting(output_folder, verbose: bool = True):
    """Continue an interrupted ``run_sorter("deepspikesort", ..., folder=output_folder)``.

    Finished stages are read back from the sorter folder; DeepCluster continues from its
    last finished round. Returns the Sorting, like ``run_sorter``.
    """
    import json

    from .errors import OutputFolderError

    output_folder = Path(output_folder)
    params_file = output_folder / "spikeinterface_params.json"
    if not params_file.exists():
        raise OutputFolderError(f"{output_folder} holds no deepspikesort run to resume (no spikeinterface_params.json).")
    all_params = json.loads(params_file.read_text())
    if all_params.get("sorter_name") != DeepSpikeSortSorter.sorter_name:
        raise OutputFolderError(f"{output_folder} was written by {all_params.get('sorter_name')!r}, not deepspikesort.")
    all_params["sorter_params"]["resume"] = True
    params_file.write_text(json.dumps(all_params, indent=4))
    DeepSpikeSortSorter.run_from_folder(output_folder, raise_error=True, verbose=verbose)
    return DeepSpikeSortSorter.get_result_from_folder(output_folder)
