"""What both exports share: a sorter folder read back, the analyzer, the one unit depth, binary layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import OutputFolderError, RecordingError
from ..output_folders import recording_paths
from ..preprocessing import for_analysis


EXPORT_INFO = "deepspikesort_export.json"


# The one estimator of a unit's position: ALF's clusters.depths and the report use it.
# Centre of mass, the estimator of spikes.depths too, so that a cluster's depth lies
# within its spikes' depths (monopolar triangulation moved units by up to 24 µm from them).
UNIT_LOCATION_METHOD = "center_of_mass"


def load_sorter_folder(folder):
    """``(sorting, recording)`` from a ``run_sorter`` output folder (or its ``sorter_output``).

    The recording is the one that was sorted, read back from
    ``spikeinterface_recording.json``; it is None when that recording could not be saved
    (for example an in-memory generated recording).
    """
    from spikeinterface.sorters import read_sorter_folder

    folder = Path(folder)
    if folder.name == "sorter_output" and not (folder / "spikeinterface_log.json").exists():
        folder = folder.parent
    if not (folder / "spikeinterface_log.json").exists():
        raise OutputFolderError(
            f"{folder} is not a sorter output folder (no spikeinterface_log.json): give the folder passed to "
            "run_sorter(..., folder=...) or `deepspikesort sort --output`."
        )
    sorting = read_sorter_folder(folder, register_recording=True)
    recording = sorting._recording if sorting.has_recording() else None
    return sorting, recording


def _resolve(sorting_or_sorter_folder, recording):
    """``(sorting, recording, sorter_folder or None)`` from what the caller gave."""
    sorter_folder = None
    if isinstance(sorting_or_sorter_folder, (str, Path)):
        path = Path(sorting_or_sorter_folder)
        if (path / "spikeinterface_log.json").exists() or (path.name == "sorter_output"):
            sorting, sorted_recording = load_sorter_folder(path)
            sorter_folder = path
        else:
            from spikeinterface.core import load

            sorting, sorted_recording = load(path), None
        recording = recording if recording is not None else sorted_recording
    else:
        sorting = sorting_or_sorter_folder
        if recording is None and sorting.has_recording():
            recording = sorting._recording
    if recording is None:
        raise RecordingError(
            "Exporting needs the sorted recording (for amplitudes, depths and waveforms): pass recording=..., "
            "or export a sorter folder whose spikeinterface_recording.json can be loaded."
        )
    if recording.get_num_segments() != sorting.get_num_segments():
        raise RecordingError(f"The recording has {recording.get_num_segments()} segment(s) and the sorting "
                             f"{sorting.get_num_segments()}: they do not belong together.")
    return sorting, recording, sorter_folder


def _inputs(sorting, recording, sorter_folder) -> list[Path]:
    """What an export reads, which its output folder must never replace."""
    paths = recording_paths(recording) + recording_paths(sorting)
    return paths + ([Path(sorter_folder)] if sorter_folder is not None else [])


def build_analyzer(sorting, recording, sparse: bool = True, radius_um: float = 100.0, seed: int = 0,
                   job_kwargs: dict | None = None, waveforms: bool = False):
    """An in-memory SortingAnalyzer with templates, amplitudes and locations, ready for export.

    ``recording`` is filtered first when it is not already (see :func:`preprocessing.for_analysis`).
    ``waveforms=True`` also keeps the sampled spikes' waveforms (principal components need them).
    """
    from spikeinterface.core import create_sorting_analyzer

    job_kwargs = dict(job_kwargs or {})
    job_kwargs.setdefault("progress_bar", False)
    analyzer = create_sorting_analyzer(
        sorting, for_analysis(recording), format="memory", sparse=sparse,
        sparsity_kwargs=dict(method="radius", radius_um=radius_um), seed=seed, job_kwargs=job_kwargs,
    )
    # waveforms before templates: SpikeInterface drops the templates when waveforms come after them
    analyzer.compute(
        ["random_spikes"] + (["waveforms"] if waveforms else []) +
        ["templates", "noise_levels", "spike_amplitudes", "spike_locations"],
        extension_params=dict(
            random_spikes=dict(max_spikes_per_unit=300, seed=seed),
            noise_levels=dict(random_slices_kwargs=dict(seed=seed)),
            spike_locations=dict(method=UNIT_LOCATION_METHOD),
        ),
        verbose=False,
        **job_kwargs,
    )
    unit_locations(analyzer)
    return analyzer


def unit_locations(analyzer) -> np.ndarray:
    """Each unit's position in µm, (n_units, 2 or 3), by :data:`UNIT_LOCATION_METHOD`.

    The ``unit_locations`` extension is computed (or recomputed, when it was computed with
    another method) on ``analyzer``, which needs ``templates``.
    """
    extension = analyzer.get_extension("unit_locations")
    if extension is None or extension.params.get("method") != UNIT_LOCATION_METHOD:
        analyzer.compute("unit_locations", method=UNIT_LOCATION_METHOD)
        extension = analyzer.get_extension("unit_locations")
    return np.asarray(extension.get_data(), dtype=np.float64)


def unit_depths(analyzer) -> np.ndarray:
    """Each unit's depth in µm along the probe (its y axis; x on a one-dimensional layout).

    The one definition of depth shared by ALF's ``clusters.depths`` and the report: the
    y coordinate of :func:`unit_locations`.
    """
    locations = unit_locations(analyzer)
    depth_axis = 1 if analyzer.get_channel_locations().shape[1] > 1 else 0
    return locations[:, depth_axis]


def _segment_offsets(sorting, recording):
    """Sample and time offsets that put the segments end to end."""
    fs = sorting.get_sampling_frequency()
    sample_offsets, time_offsets = [0], [0.0]
    for segment in range(sorting.get_num_segments() - 1):
        n = recording.get_num_samples(segment)
        sample_offsets.append(sample_offsets[-1] + n)
        time_offsets.append(time_offsets[-1] + n / fs)
    return np.asarray(sample_offsets, dtype=np.int64), np.asarray(time_offsets)


def _original_binary(recording) -> dict | None:
    """Where ``recording``'s samples lie in one flat binary file, as Phy's params.py says it
    (``dat_path``, ``dtype``, ``n_channels_dat``, ``offset``, and the file column of each
    channel, ``channel_map``), or None when they do not."""
    from spikeinterface.core import BinaryFolderRecording, BinaryRecordingExtractor
    from spikeinterface.extractors.neoextractors.spikeglx import SpikeGLXRecordingExtractor

    if recording.get_num_segments() != 1:
        return None
    if type(recording) is SpikeGLXRecordingExtractor:
        return _spikeglx_binary(recording)
    if type(recording) not in (BinaryRecordingExtractor, BinaryFolderRecording):
        return None
    kwargs = recording._bin_kwargs if isinstance(recording, BinaryFolderRecording) else recording._kwargs
    if kwargs.get("time_axis", 0) != 0:
        return None
    path = Path(kwargs["file_paths"][0]).absolute()
    if not path.is_file():
        return None
    return dict(dat_path=str(path), dtype=np.dtype(kwargs["dtype"]).name, n_channels_dat=int(kwargs["num_channels"]),
                offset=int(kwargs.get("file_offset", 0) or 0), hp_filtered=bool(recording.is_filtered()),
                channel_map=np.arange(recording.get_num_channels()))


def _spikeglx_binary(recording) -> dict | None:
    """A SpikeGLX stream's .bin file: int16, every saved channel (the sync channel included) in
    the order neo lists them; channel ids are ``"{stream}#{name}"``."""
    info = recording.neo_reader.signals_info_dict.get((0, recording.stream_name))
    if info is None or not Path(info["bin_file"]).is_file():
        return None
    names = list(info["channel_names"])
    try:
        columns = [names.index(str(channel).split("#", 1)[-1]) for channel in recording.channel_ids]
    except ValueError:  # channel ids that are not the file's channel names
        return None
    return dict(dat_path=str(Path(info["bin_file"]).absolute()), dtype="int16", n_channels_dat=int(info["num_chan"]),
                offset=0, hp_filtered=bool(recording.is_filtered()), channel_map=np.asarray(columns, dtype=np.int32))


def _write_params_py(path: Path, layout: dict | None, recording) -> None:
    """Phy's params.py. Without a data file, ``dat_path = ''`` (phylib's "no raw data")."""
    layout = layout or dict(dat_path="", dtype=np.dtype(recording.get_dtype()).name,
                            n_channels_dat=recording.get_num_channels(), offset=0,
                            hp_filtered=bool(recording.is_filtered()))
    path.write_text(
        f"dat_path = r'{layout['dat_path']}'\n"
        f"n_channels_dat = {layout['n_channels_dat']}\n"
        f"dtype = '{layout['dtype']}'\n"
        f"offset = {layout['offset']}\n"
        f"sample_rate = {float(recording.get_sampling_frequency())}\n"
        f"hp_filtered = {layout['hp_filtered']}\n"
    )
