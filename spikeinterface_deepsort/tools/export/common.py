"""What both exports share: a sorter folder read back, the inputs to protect, binary layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import OutputFolderError, RecordingError
from ...output_folders import recording_paths
from ...run_folder import SORTER_OUTPUT, RunFolder


EXPORT_INFO = "deepspikesort_export.json"


def load_sorter_folder(folder):
    """``(sorting, recording)`` from a ``run_sorter`` output folder (or its ``sorter_output``).

    The recording is the one that was sorted, read back from
    ``spikeinterface_recording.json``; it is None when that recording could not be saved
    (for example an in-memory generated recording).
    """
    from spikeinterface.core import load

    run = RunFolder.locate(folder)
    try:
        recording = run.load_recording()
    except OutputFolderError:
        recording = None
    return load(run.sorting_path), recording


def _resolve(sorting_or_sorter_folder, recording):
    """``(sorting, recording, sorter_folder or None)`` from what the caller gave."""
    sorter_folder = None
    if isinstance(sorting_or_sorter_folder, (str, Path)):
        path = Path(sorting_or_sorter_folder)
        if (path / "spikeinterface_log.json").exists() or path.name == SORTER_OUTPUT:
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
