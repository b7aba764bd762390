"""Export a sorting to IBL's ALF files and to Phy.

``export_to_alf`` writes the files the International Brain Laboratory's tools read
(``one.alf.io.load_object``, brainbox, and SpikeInterface's ``read_alf_sorting``):

=============================  ==================  ==============================================
file                           shape, dtype        content
=============================  ==================  ==============================================
``spikes.times.npy``           (n_spikes,) f8      spike times in seconds
``spikes.samples.npy``         (n_spikes,) i8      spike times in samples (``read_alf_sorting``)
``spikes.clusters.npy``        (n_spikes,) i8      cluster index, 0 … n_clusters - 1
``spikes.amps.npy``            (n_spikes,) f8      amplitude in **volts** (see below)
``spikes.depths.npy``          (n_spikes,) f8      depth in µm along the probe (its y axis)
``clusters.channels.npy``      (n_clusters,) i8    index of the cluster's peak channel
``clusters.depths.npy``        (n_clusters,) f8    depth in µm of the cluster's centre
``clusters.amps.npy``          (n_clusters,) f8    median spike amplitude in volts
``clusters.unitIds.npy``       (n_clusters,)       the SpikeInterface unit id of each cluster
``clusters.waveforms.npy``     (n_clusters, n_samples, n_wf_channels) f4   mean waveform (volts)
``clusters.waveformsChannels.npy``  (n_clusters, n_wf_channels) i8          their channel indices
``channels.localCoordinates.npy``   (n_channels, 2) f8   contact positions in µm (x, y)
``channels.rawInd.npy``        (n_channels,) i8    index of each channel in the raw recording
=============================  ==================  ==============================================

Spikes are sorted by time. Cluster ``i`` is ``sorting.unit_ids[i]``; ALF has no unit
ids of its own (``spikes.clusters`` indexes the ``clusters`` arrays directly).

Amplitudes, as IBL stores them, are in volts and positive: the absolute value of each
spike's trace at the unit's peak channel and peak sample (SpikeInterface's
``spike_amplitudes``), on the recording band-passed 300–6000 Hz (and common-median
referenced with 8 channels or more) when it is not already filtered. A recording
without a µV scaling (no ``gain_to_uV``) has no voltage: its amplitudes are written in
its own units and ``deepspikesort_export.json`` says so (``"amplitude_unit"``).
Depths come from SpikeInterface's ``spike_locations`` and ``unit_locations`` (centre of
mass): on a Neuropixels probe read by ``read_spikeglx`` the y axis is µm from the tip,
as in IBL's files.

Phy: SpikeInterface's own ``spikeinterface.exporters.export_to_phy`` does the work;
``export_phy`` only adds what a sorter folder needs (the sorting and the sorted
recording read back from it, the same filtering as above, and a sparse analyzer).

Several segments are written end to end, in one timeline (times and samples of
segment ``k`` follow those of segment ``k - 1``), as ``concatenate_recordings`` would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .errors import OutputFolderError, RecordingError
from .preprocessing import for_analysis

EXPORT_INFO = "deepspikesort_export.json"


def _check_output_folder(folder: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder unless ``overwrite``, and never one that holds a sorter run or a recording."""
    if not folder.exists() or not any(folder.iterdir()):
        return
    if not overwrite:
        raise OutputFolderError(f"{folder} exists and is not empty; pass overwrite=True (--overwrite) to replace it.")
    precious = ("spikeinterface_log.json", "spikeinterface_params.json", "deepspikesort.log", "stages.json",
                "si_folder.json", "binary.json")
    if any((folder / name).exists() for name in precious) or any(folder.glob("*.meta")):
        raise OutputFolderError(f"{folder} holds a sorter run or a recording; it is not replaced by an export. "
                                "Choose another output folder.")


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
    if isinstance(sorting_or_sorter_folder, (str, Path)):
        path = Path(sorting_or_sorter_folder)
        if (path / "spikeinterface_log.json").exists() or (path.name == "sorter_output"):
            sorting, sorted_recording = load_sorter_folder(path)
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
    return sorting, recording


def build_analyzer(sorting, recording, sparse: bool = True, radius_um: float = 100.0, seed: int = 0,
                   job_kwargs: dict | None = None):
    """An in-memory SortingAnalyzer with templates, amplitudes and locations, ready for export.

    ``recording`` is filtered first when it is not already (see :func:`preprocessing.for_analysis`).
    """
    from spikeinterface.core import create_sorting_analyzer

    job_kwargs = dict(job_kwargs or {})
    job_kwargs.setdefault("progress_bar", False)
    analyzer = create_sorting_analyzer(
        sorting, for_analysis(recording), format="memory", sparse=sparse,
        sparsity_kwargs=dict(method="radius", radius_um=radius_um), seed=seed, job_kwargs=job_kwargs,
    )
    analyzer.compute(
        ["random_spikes", "templates", "noise_levels", "spike_amplitudes", "spike_locations", "unit_locations"],
        extension_params=dict(
            random_spikes=dict(max_spikes_per_unit=300, seed=seed),
            noise_levels=dict(random_slices_kwargs=dict(seed=seed)),
            spike_locations=dict(method="center_of_mass"),
            unit_locations=dict(method="center_of_mass"),
        ),
        verbose=False,
        **job_kwargs,
    )
    return analyzer


def _segment_offsets(sorting, recording):
    """Sample and time offsets that put the segments end to end."""
    fs = sorting.get_sampling_frequency()
    sample_offsets, time_offsets = [0], [0.0]
    for segment in range(sorting.get_num_segments() - 1):
        n = recording.get_num_samples(segment)
        sample_offsets.append(sample_offsets[-1] + n)
        time_offsets.append(time_offsets[-1] + n / fs)
    return np.asarray(sample_offsets, dtype=np.int64), np.asarray(time_offsets)


def _waveform_channels(locations: np.ndarray, main_channels: np.ndarray, count: int) -> np.ndarray:
    """For each cluster the ``count`` channels nearest its peak channel (nearest first)."""
    distances = np.linalg.norm(locations[main_channels][:, None, :] - locations[None, :, :], axis=2)
    return np.argsort(distances, axis=1, kind="stable")[:, :count]


def export_to_alf(sorting_or_sorter_folder, recording=None, output_folder=None, analyzer=None,
                  n_waveform_channels: int = 32, overwrite: bool = False, job_kwargs: dict | None = None) -> Path:
    """Write a sorting as IBL ALF files (see the module docstring for the files and units).

    Parameters
    ----------
    sorting_or_sorter_folder : BaseSorting | str | Path
        A Sorting, a ``run_sorter`` output folder, or a saved Sorting folder.
    recording : BaseRecording | None
        The sorted recording (raw or preprocessed); read back from the sorter folder when None.
    output_folder : str | Path
        Where the ALF files go (created; must be empty or absent unless ``overwrite``).
    analyzer : SortingAnalyzer | None
        An analyzer with ``templates``, ``spike_amplitudes``, ``spike_locations`` and
        ``unit_locations`` to reuse; built with :func:`build_analyzer` when None.
    n_waveform_channels : int
        Channels per cluster in ``clusters.waveforms`` (the nearest to its peak channel).

    Returns the output folder. ``spikeinterface.extractors.read_alf_sorting(output_folder,
    sampling_frequency)`` reads it back (it needs the ``ONE-api`` package).
    """
    if output_folder is None:
        raise ValueError("export_to_alf: give output_folder.")
    output_folder = Path(output_folder)
    _check_output_folder(output_folder, overwrite)
    if analyzer is not None:
        if not analyzer.has_recording():
            raise RecordingError("export_to_alf: the analyzer has no recording attached.")
        sorting, recording = analyzer.sorting, analyzer.recording
    else:
        sorting, recording = _resolve(sorting_or_sorter_folder, recording)

    unit_ids = sorting.unit_ids
    n_clusters = len(unit_ids)
    n_channels = recording.get_num_channels()
    locations = np.asarray(recording.get_channel_locations(), dtype=np.float64)
    depth_axis = 1 if locations.shape[1] > 1 else 0
    fs = sorting.get_sampling_frequency()

    spike_vector = sorting.to_spike_vector()  # sorted by segment, then sample
    sample_offsets, time_offsets = _segment_offsets(sorting, recording)
    segments = spike_vector["segment_index"]
    samples = spike_vector["sample_index"].astype(np.int64) + sample_offsets[segments]
    times = spike_vector["sample_index"] / fs + time_offsets[segments]  # from the start of the file, as IBL's
    clusters = spike_vector["unit_index"].astype(np.int64)

    in_volts = bool(recording.has_scaleable_traces())
    amps = np.zeros(len(spike_vector), dtype=np.float64)
    depths = np.zeros(len(spike_vector), dtype=np.float64)
    cluster_channels = np.zeros(n_clusters, dtype=np.int64)
    cluster_depths = np.zeros(n_clusters, dtype=np.float64)
    cluster_amps = np.zeros(n_clusters, dtype=np.float64)
    n_wf = int(min(n_waveform_channels, n_channels))
    waveforms = np.zeros((n_clusters, 0, n_wf), dtype=np.float32)
    waveform_channels = np.zeros((n_clusters, n_wf), dtype=np.int64)

    if n_clusters > 0 and len(spike_vector) > 0:
        if analyzer is None:
            analyzer = build_analyzer(sorting, recording, job_kwargs=job_kwargs)
        in_volts = in_volts and bool(analyzer.return_in_uV)
        scale = 1e-6 if in_volts else 1.0
        # extension data are in the spike vector's order, as ours
        amps = np.abs(np.asarray(analyzer.get_extension("spike_amplitudes").get_data(), dtype=np.float64)) * scale
        spike_locations = analyzer.get_extension("spike_locations").get_data()
        depths = np.asarray(spike_locations["y" if depth_axis == 1 else "x"], dtype=np.float64)
        cluster_channels = np.asarray(analyzer.get_main_channels(outputs="index"), dtype=np.int64)
        cluster_depths = np.asarray(analyzer.get_extension("unit_locations").get_data()[:, depth_axis], dtype=np.float64)
        counts = np.bincount(clusters, minlength=n_clusters)
        cluster_amps = np.asarray([np.median(amps[clusters == i]) if counts[i] else 0.0 for i in range(n_clusters)])
        dense = analyzer.get_extension("templates").get_templates(operator="average")  # (units, samples, channels)
        waveform_channels = _waveform_channels(locations, cluster_channels, n_wf)
        waveforms = np.take_along_axis(dense, waveform_channels[:, None, :], axis=2).astype(np.float32) * scale

    shutil.rmtree(output_folder, ignore_errors=True)  # empty, or overwrite=True (checked above)
    output_folder.mkdir(parents=True)
    unit_id_array = np.asarray(unit_ids)
    if unit_id_array.dtype.kind not in "iu":
        unit_id_array = unit_id_array.astype(str)
    arrays = {
        "spikes.times": times.astype(np.float64),
        "spikes.samples": samples,
        "spikes.clusters": clusters,
        "spikes.amps": amps,
        "spikes.depths": depths,
        "clusters.channels": cluster_channels,
        "clusters.depths": cluster_depths,
        "clusters.amps": cluster_amps,
        "clusters.unitIds": unit_id_array,
        "clusters.waveforms": waveforms,
        "clusters.waveformsChannels": waveform_channels,
        "channels.localCoordinates": locations[:, :2] if locations.shape[1] >= 2 else locations,
        "channels.rawInd": np.arange(n_channels, dtype=np.int64),
    }
    for name, array in arrays.items():
        np.save(output_folder / f"{name}.npy", array)
    info = dict(
        sampling_frequency=fs, num_clusters=n_clusters, num_spikes=int(len(spike_vector)),
        num_segments=sorting.get_num_segments(), amplitude_unit="V" if in_volts else "recording units",
        depth_unit="um", unit_ids=[str(u) for u in unit_ids],
    )
    (output_folder / EXPORT_INFO).write_text(json.dumps(info, indent=2))
    return output_folder


def export_phy(sorting_or_sorter_folder, recording=None, output_folder=None, analyzer=None,
               compute_pc_features: bool = False, copy_binary: bool = True, remove_if_exists: bool = False,
               job_kwargs: dict | None = None, **export_kwargs) -> Path:
    """Phy's template-gui folder through ``spikeinterface.exporters.export_to_phy``.

    What this adds to SpikeInterface's function: a ``run_sorter`` folder is accepted (the
    sorting and the sorted recording are read back from it), the recording is filtered
    when it is raw (Phy shows ``recording.dat`` as written), and the analyzer is sparse
    (100 µm) so that Neuropixels exports stay small. Principal components are off by
    default (``compute_pc_features=True`` turns them on; they are slow on long recordings).
    Other keyword arguments go to ``export_to_phy``. ``read_phy(output_folder)`` reads it back.
    """
    from spikeinterface.exporters import export_to_phy

    if output_folder is None:
        raise ValueError("export_phy: give output_folder.")
    _check_output_folder(Path(output_folder), remove_if_exists)
    if analyzer is None:
        sorting, recording = _resolve(sorting_or_sorter_folder, recording)
        analyzer = build_analyzer(sorting, recording, job_kwargs=job_kwargs)
    job_kwargs = dict(job_kwargs or {})
    job_kwargs.setdefault("progress_bar", False)
    export_to_phy(analyzer, output_folder, compute_pc_features=compute_pc_features, copy_binary=copy_binary,
                  remove_if_exists=remove_if_exists, verbose=False, use_relative_path=True, **export_kwargs,
                  **job_kwargs)
    _keep_non_numeric_unit_ids_readable(Path(output_folder), analyzer.unit_ids)
    return Path(output_folder)


def _keep_non_numeric_unit_ids_readable(folder: Path, unit_ids) -> None:
    """SpikeInterface 0.105's ``read_phy`` takes ``cluster_si_unit_ids.tsv`` as numbers and fails
    on string unit ids; such ids are kept under the column ``si_unit_name`` instead (read back as
    the ``si_unit_name`` property), and the Phy cluster ids become the unit ids."""
    import pandas as pd

    tsv = folder / "cluster_si_unit_ids.tsv"
    if np.asarray(unit_ids).dtype.kind in "iu" or not tsv.exists():
        return
    table = pd.read_csv(tsv, sep="\t")
    table.rename(columns={"si_unit_id": "si_unit_name"}).to_csv(tsv, sep="\t", index=False)
