"""Export a sorting to IBL's ALF files and to Phy's (Kilosort-format) folder.

``export_to_alf`` writes the files the International Brain Laboratory's tools read
(``one.alf.io.load_object``, brainbox, phylib's ``alf2phy``, SpikeInterface's
``read_alf_sorting``):

==================================  ==================  ==============================================
file                                shape, dtype        content
==================================  ==================  ==============================================
``spikes.times.npy``                (n_spikes,) f8      spike times in seconds
``spikes.samples.npy``              (n_spikes,) i8      spike times in samples (``read_alf_sorting``)
``spikes.clusters.npy``             (n_spikes,) i8      cluster index, 0 … n_clusters - 1
``spikes.templates.npy``            (n_spikes,) i8      template index: one template per cluster, so the same
``spikes.amps.npy``                 (n_spikes,) f8      amplitude in **volts** (see below)
``spikes.depths.npy``               (n_spikes,) f8      depth in µm along the probe (its y axis)
``clusters.channels.npy``           (n_clusters,) i8    index of the cluster's peak channel
``clusters.depths.npy``             (n_clusters,) f8    depth in µm of the cluster (:func:`unit_depths`)
``clusters.amps.npy``               (n_clusters,) f8    median spike amplitude in volts
``clusters.peakToTrough.npy``       (n_clusters,) f8    ms from the template's trough to its peak (phylib's)
``clusters.unitIds.npy``            (n_clusters,)       the SpikeInterface unit id of each cluster
``clusters.uuids.csv``              n_clusters rows     one UUID per cluster, derived from its spike train
``clusters.metrics.pqt``            n_clusters rows     quality metrics under IBL's names (:data:`IBL_METRICS`)
``clusters.waveforms.npy``          (n_clusters, n_samples, n_wf_channels) f4   mean waveform (volts)
``clusters.waveformsChannels.npy``  (n_clusters, n_wf_channels) i8          their channel indices
``templates.waveforms.npy``         as clusters.waveforms (one template per cluster)
``templates.waveformsChannels.npy`` as clusters.waveformsChannels
``templates.amps.npy``              (n_clusters,) f8    mean spike amplitude in volts (phylib's definition)
``channels.localCoordinates.npy``   (n_channels, 2) f8  contact positions in µm (x, y)
``channels.rawInd.npy``             (n_channels,) i8    index of each channel in the raw recording
``_kilosort_whitening.matrix.npy``  identity            the waveforms are not whitened (``alf2phy`` reads it)
``params.py``                       Phy's parameters    so that ``alf2phy``'s folder opens in Phy
==================================  ==================  ==============================================

Spikes are sorted by time. Cluster ``i`` is ``sorting.unit_ids[i]``; ALF has no unit
ids of its own (``spikes.clusters`` indexes the ``clusters`` arrays directly).

Amplitudes, as IBL stores them, are in volts and positive: the absolute value of each
spike's trace at the unit's peak channel and peak sample (SpikeInterface's
``spike_amplitudes``), on the recording band-passed 300–6000 Hz (and common-median
referenced with 8 channels or more) when it is not already filtered. A recording
without a µV scaling (no ``gain_to_uV``) has no voltage: its amplitudes are written in
its own units and ``deepspikesort_export.json`` says so (``"amplitude_unit"``).
Depths are centres of mass (SpikeInterface's ``spike_locations`` and ``unit_locations``
with ``method="center_of_mass"``): the one definition of a unit's depth that the report
uses too (:func:`unit_depths`). On a Neuropixels probe read by ``read_spikeglx`` the y
axis is µm from the tip, as in IBL's files.

``export_phy`` writes Phy's template-gui folder in Kilosort's format, so that tools built
for Kilosort folders (phylib, bombcell) read it: ``whitening_mat.npy`` and
``whitening_mat_inv.npy`` (identity: nothing is whitened), ``templates.npy`` dense and
in the units of ``recording.dat``, ``amplitudes.npy`` the positive template scaling of
each spike (SpikeInterface's ``amplitude_scalings``: spike ≈ amplitude × template), the
µV peak amplitudes in ``spike_amplitudes_uV.npy``, and ``recording.dat`` in the sorted
recording's integer dtype when it has one (see :func:`export_phy`).

Several segments are written end to end in ALF, in one timeline (times and samples of
segment ``k`` follow those of segment ``k - 1``), as ``concatenate_recordings`` would.
Phy reads one continuous file: a multi-segment sorting is refused there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import uuid
from pathlib import Path

import numpy as np

from .errors import OutputFolderError, ParameterError, RecordingError
from .output_folders import atomic_output, check_writable_output, recording_paths
from .preprocessing import for_analysis

EXPORT_INFO = "deepspikesort_export.json"

# The one estimator of a unit's position: ALF's clusters.depths and the report use it.
# Centre of mass, the estimator of spikes.depths too, so that a cluster's depth lies
# within its spikes' depths (monopolar triangulation moved units by up to 24 µm from them).
UNIT_LOCATION_METHOD = "center_of_mass"

# IBL's clusters.metrics names (brainbox.metrics.single_units.quick_unit_metrics) for the
# quantities SpikeInterface computes the same way, with IBL's parameters.
IBL_METRICS = {
    "spike_count": "num_spikes",
    "firing_rate": "firing_rate",
    "presence_ratio": "presence_ratio (10 s bins, IBL's presence_window)",
    "amp_median": "amplitude_median, in volts like spikes.amps",
    "contamination": "isi_violations_ratio (Hill et al. 2011; refractory period 1.5 ms, min ISI 0.1 ms)",
    "min_contamination": "sliding_rp_violation (IBL's sliding refractory period, 90 % confidence)",
}

CHUNK_KEYS = {"chunk_size", "chunk_memory", "total_memory", "chunk_duration"}  # SpikeInterface's job_kwargs

UUID_NAMESPACE = uuid.UUID("5b0d5ac4-2f0e-4a8e-9c55-0c7a3d1e8f10")  # deepspikesort's clusters


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


def _waveform_channels(locations: np.ndarray, main_channels: np.ndarray, count: int) -> np.ndarray:
    """For each cluster the ``count`` channels nearest its peak channel (nearest first)."""
    distances = np.linalg.norm(locations[main_channels][:, None, :] - locations[None, :, :], axis=2)
    return np.argsort(distances, axis=1, kind="stable")[:, :count]


def _peak_to_trough_ms(templates: np.ndarray, fs: float) -> np.ndarray:
    """phylib's ``clusters.peakToTrough``: on the channel of largest peak-to-peak, the time from
    the template's minimum to its maximum, in ms (negative when the maximum comes first)."""
    if len(templates) == 0:
        return np.zeros(0)
    channels = np.argmax(templates.max(axis=1) - templates.min(axis=1), axis=1)
    on_peak = templates[np.arange(len(templates)), :, channels]  # (units, samples)
    return (on_peak.argmax(axis=1) - on_peak.argmin(axis=1)) / fs * 1e3


def cluster_uuids(sorting) -> list[str]:
    """One UUID per unit, derived from its id and spike train: the same sorting exported twice
    gives the same UUIDs, different units different ones."""
    uuids = []
    for unit in sorting.unit_ids:
        digest = hashlib.sha256(str(unit).encode())
        for segment in range(sorting.get_num_segments()):
            digest.update(np.asarray(sorting.get_unit_spike_train(unit, segment_index=segment), np.int64).tobytes())
        uuids.append(str(uuid.uuid5(UUID_NAMESPACE, digest.hexdigest())))
    return uuids


def ibl_cluster_metrics(analyzer, in_volts: bool):
    """``clusters.metrics`` as a DataFrame: SpikeInterface's metrics under IBL's names (see
    :data:`IBL_METRICS`), one row per unit, ``cluster_id`` 0 … n - 1. The analyzer is not changed."""
    import pandas as pd
    from spikeinterface.metrics import (compute_amplitude_medians, compute_firing_rates, compute_isi_violations,
                                        compute_num_spikes, compute_presence_ratios, compute_sliding_rp_violations)

    unit_ids = analyzer.unit_ids
    scale = 1e-6 if in_volts else 1.0
    columns = dict(
        spike_count=compute_num_spikes(analyzer),
        firing_rate=compute_firing_rates(analyzer),
        presence_ratio=compute_presence_ratios(analyzer, bin_duration_s=10.0),
        amp_median={u: abs(a) * scale for u, a in compute_amplitude_medians(analyzer).items()},
        contamination=compute_isi_violations(analyzer, isi_threshold_ms=1.5, min_isi_ms=0.1).isi_violations_ratio,
        min_contamination=compute_sliding_rp_violations(analyzer),
    )
    table = pd.DataFrame({name: [values.get(u, np.nan) for u in unit_ids] for name, values in columns.items()})
    table.insert(0, "cluster_id", np.arange(len(unit_ids)))
    return table.astype({"spike_count": np.int64})


def _alf_spike_arrays(sorting, recording):
    spike_vector = sorting.to_spike_vector()  # sorted by segment, then sample
    fs = sorting.get_sampling_frequency()
    sample_offsets, time_offsets = _segment_offsets(sorting, recording)
    segments = spike_vector["segment_index"]
    clusters = spike_vector["unit_index"].astype(np.int64)
    return {
        "spikes.times": spike_vector["sample_index"] / fs + time_offsets[segments],  # from the start of the file
        "spikes.samples": spike_vector["sample_index"].astype(np.int64) + sample_offsets[segments],
        "spikes.clusters": clusters,
        "spikes.templates": clusters.copy(),
    }


def _alf_analyzer_arrays(analyzer, n_wf: int, in_volts: bool) -> dict:
    """The arrays that come from the analyzer: amplitudes, depths, waveforms, peak channels."""
    scale = 1e-6 if in_volts else 1.0
    locations = np.asarray(analyzer.get_channel_locations(), dtype=np.float64)
    depth_axis = 1 if locations.shape[1] > 1 else 0
    clusters = analyzer.sorting.to_spike_vector()["unit_index"]
    n_clusters = len(analyzer.unit_ids)
    # extension data are in the spike vector's order, as ours
    amps = np.abs(np.asarray(analyzer.get_extension("spike_amplitudes").get_data(), dtype=np.float64)) * scale
    depths = np.asarray(analyzer.get_extension("spike_locations").get_data()["y" if depth_axis else "x"], np.float64)
    channels = np.asarray(analyzer.get_main_channels(outputs="index"), dtype=np.int64)
    counts = np.bincount(clusters, minlength=n_clusters)
    dense = analyzer.get_extension("templates").get_templates(operator="average")  # (units, samples, channels)
    waveform_channels = _waveform_channels(locations, channels, n_wf)
    waveforms = np.take_along_axis(dense, waveform_channels[:, None, :], axis=2).astype(np.float32) * scale
    with np.errstate(invalid="ignore"):
        mean_amps = np.bincount(clusters, weights=amps, minlength=n_clusters) / counts
    return {
        "spikes.amps": amps,
        "spikes.depths": depths,
        "clusters.channels": channels,
        "clusters.depths": unit_depths(analyzer),
        "clusters.amps": np.asarray([np.median(amps[clusters == i]) if counts[i] else np.nan
                                     for i in range(n_clusters)]),
        "clusters.peakToTrough": _peak_to_trough_ms(dense, analyzer.sampling_frequency),
        "clusters.waveforms": waveforms,
        "clusters.waveformsChannels": waveform_channels,
        "templates.waveforms": waveforms,
        "templates.waveformsChannels": waveform_channels,
        "templates.amps": mean_amps,
    }


def _alf_empty_arrays(n_clusters: int, n_wf: int) -> dict:
    """What :func:`_alf_analyzer_arrays` gives for a sorting without spikes."""
    waveforms = np.zeros((n_clusters, 0, n_wf), dtype=np.float32)
    channels = np.zeros((n_clusters, n_wf), dtype=np.int64)
    per_cluster = np.full(n_clusters, np.nan)
    return {"spikes.amps": np.zeros(0), "spikes.depths": np.zeros(0),
            "clusters.channels": np.zeros(n_clusters, np.int64), "clusters.depths": per_cluster,
            "clusters.amps": per_cluster, "clusters.peakToTrough": per_cluster,
            "clusters.waveforms": waveforms, "clusters.waveformsChannels": channels,
            "templates.waveforms": waveforms, "templates.waveformsChannels": channels, "templates.amps": per_cluster}


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
        Where the ALF files go: a new or empty folder, or (``overwrite=True``) an earlier ALF
        export of this package. It is written whole or not at all.
    analyzer : SortingAnalyzer | None
        An analyzer with ``templates``, ``spike_amplitudes`` and ``spike_locations`` to reuse;
        built with :func:`build_analyzer` when None.
    n_waveform_channels : int
        Channels per cluster in ``clusters.waveforms`` (the nearest to its peak channel).

    Returns the output folder. ``spikeinterface.extractors.read_alf_sorting(output_folder,
    sampling_frequency)``, ``one.alf.io.load_object(output_folder, "spikes")`` and
    ``phylib.io.alf.alf2phy(output_folder)`` read it.
    """
    if output_folder is None:
        raise ValueError("export_to_alf: give output_folder.")
    if importlib.util.find_spec("pyarrow") is None:
        raise ImportError("The ALF export writes clusters.metrics.pqt, a parquet file, which needs pyarrow: "
                          "pip install pyarrow (or 'spikeinterface-deepsort[export]').")
    if analyzer is not None:
        if not analyzer.has_recording():
            raise RecordingError("export_to_alf: the analyzer has no recording attached.")
        # the sorted recording, when given, names the raw file in params.py
        recording = recording if recording is not None else analyzer.recording
        sorting, sorter_folder = analyzer.sorting, None
    else:
        sorting, recording, sorter_folder = _resolve(sorting_or_sorter_folder, recording)
    inputs = _inputs(sorting, recording, sorter_folder)
    with atomic_output(output_folder, kind="alf-export", overwrite=overwrite, inputs=inputs,
                       option="overwrite=True (--overwrite)") as tmp:
        n_clusters, n_channels = len(sorting.unit_ids), recording.get_num_channels()
        n_wf = int(min(n_waveform_channels, n_channels))
        in_volts = bool(recording.has_scaleable_traces())
        arrays = _alf_spike_arrays(sorting, recording)
        metrics = None
        if n_clusters > 0 and len(arrays["spikes.samples"]) > 0:
            if analyzer is None:
                analyzer = build_analyzer(sorting, recording, job_kwargs=job_kwargs)
            in_volts = in_volts and bool(analyzer.return_in_uV)
            arrays |= _alf_analyzer_arrays(analyzer, n_wf, in_volts)
            metrics = ibl_cluster_metrics(analyzer, in_volts)
        else:
            arrays |= _alf_empty_arrays(n_clusters, n_wf)
        locations = np.asarray(recording.get_channel_locations(), dtype=np.float64)
        unit_id_array = np.asarray(sorting.unit_ids)
        arrays |= {
            "clusters.unitIds": unit_id_array if unit_id_array.dtype.kind in "iu" else unit_id_array.astype(str),
            "channels.localCoordinates": locations[:, :2],
            "channels.rawInd": np.arange(n_channels, dtype=np.int64),
            "_kilosort_whitening.matrix": np.eye(n_channels),
        }
        _write_alf(Path(tmp), arrays, metrics, sorting, recording, in_volts)
    return Path(output_folder)


def _write_alf(folder: Path, arrays: dict, metrics, sorting, recording, in_volts: bool) -> None:
    import pandas as pd

    folder.mkdir(parents=True)
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    if metrics is None:
        empty = {name: np.nan for name in IBL_METRICS}
        metrics = pd.DataFrame({"cluster_id": np.arange(len(sorting.unit_ids))} | empty)
    metrics.to_parquet(folder / "clusters.metrics.pqt", index=False)
    pd.DataFrame({"uuids": cluster_uuids(sorting)}).to_csv(folder / "clusters.uuids.csv", index=False)
    _write_params_py(folder / "params.py", _original_binary(recording), recording)
    info = dict(
        sampling_frequency=sorting.get_sampling_frequency(), num_clusters=len(sorting.unit_ids),
        num_spikes=int(len(arrays["spikes.samples"])), num_segments=sorting.get_num_segments(),
        amplitude_unit="V" if in_volts else "recording units", depth_unit="um",
        depth_definition=f"unit_locations and spike_locations, method={UNIT_LOCATION_METHOD!r}",
        metrics={name: f"SpikeInterface {source}" for name, source in IBL_METRICS.items()},
        unit_ids=[str(u) for u in sorting.unit_ids],
    )
    (folder / EXPORT_INFO).write_text(json.dumps(info, indent=2))


# --------------------------------------------------------------------------- Phy / Kilosort


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


def _dat_recording(source, analysed):
    """The traces recording.dat holds: ``analysed`` (the analyzer's, filtered) in ``source``'s integer
    dtype when it has one (rounded and clipped to its range, so that gains keep their meaning), else float32."""
    from spikeinterface.preprocessing import astype, clip

    dtype = np.dtype(source.get_dtype())
    if dtype.kind not in "iu":
        return analysed if np.dtype(analysed.get_dtype()) == np.float32 else astype(analysed, "float32")
    if np.dtype(analysed.get_dtype()) == dtype:
        return analysed
    info = np.iinfo(dtype)
    return astype(clip(analysed, a_min=float(info.min), a_max=float(info.max)), dtype.name, round=True)


def _uniform_gain(recording) -> float | None:
    """The recording's µV per unit when all channels share it (what a Kilosort-format tool takes)."""
    gains = recording.get_channel_gains() if recording.has_scaleable_traces() else None
    if gains is None or not np.allclose(gains, gains[0]):
        return None
    return float(gains[0])


def _templates_in_data_units(analyzer) -> np.ndarray:
    """Dense average templates (units, samples, channels) in the units of the analyzer's traces,
    as Kilosort's templates are in the units of its data (here unwhitened)."""
    templates = analyzer.get_extension("templates").get_templates(operator="average").astype(np.float64)
    if analyzer.return_in_uV and analyzer.recording.has_scaleable_traces():
        recording = analyzer.recording
        templates = (templates - recording.get_channel_offsets()[None, None, :]) / recording.get_channel_gains()
    return templates.astype(np.float32)


def _copied_layout(source, analysed) -> dict:
    dat = _dat_recording(source, analysed)
    return dict(dat_path="recording.dat", dtype=np.dtype(dat.get_dtype()).name, n_channels_dat=dat.get_num_channels(),
                offset=0, hp_filtered=bool(analysed.is_filtered()), recording=dat)


def _original_layout(source) -> dict:
    layout = _original_binary(source)
    if layout is None:
        raise RecordingError(
            f"--no-binary (copy_binary=False) points Phy at the sorted recording's own file, but this recording "
            f"({type(source).__name__}) is not one flat binary file (a saved binary folder, read_binary(...) or "
            "read_spikeglx(...), one segment). Drop --no-binary to write recording.dat."
        )
    return layout


def export_phy(sorting_or_sorter_folder, recording=None, output_folder=None, analyzer=None,
               compute_pc_features: bool = False, copy_binary: bool = True, overwrite: bool = False,
               job_kwargs: dict | None = None, **export_kwargs) -> Path:
    """Phy's template-gui folder in Kilosort's format (SpikeInterface's ``export_to_phy``, completed).

    - ``recording.dat`` holds the traces the templates were measured on (the sorted
      recording band-passed as in :func:`preprocessing.for_analysis` unless it is already
      filtered), in the sorted recording's integer dtype when it has one (int16 for
      SpikeGLX), rounded, with the same gains; a float recording gives float32. ``params.py``
      names the dtype; ``deepspikesort_export.json`` gives the µV per unit (``gain_to_uV``).
    - ``copy_binary=False`` (``--no-binary``) writes no copy: ``dat_path`` is the sorted
      recording's own file (raw, ``hp_filtered = False``), which must be one flat binary file.
    - ``amplitudes.npy``: the template scaling of each spike, positive, as Kilosort's;
      ``spike_amplitudes_uV.npy`` (``_raw`` without a µV scaling): the trace at the unit's
      peak channel and sample. ``templates.npy`` is dense, in the units of the data;
      ``whitening_mat.npy`` and ``whitening_mat_inv.npy`` are the identity.
    - Units without spikes are left out (Phy cluster ``i`` is the ``i``-th unit with spikes,
      ``cluster_si_unit_ids.tsv`` maps them). Principal components only with
      ``compute_pc_features=True`` (slow on long recordings).

    The folder is written whole or not at all; ``overwrite`` replaces only an earlier Phy
    export of this package. Other keyword arguments go to ``export_to_phy``.
    ``read_phy(output_folder)``, ``phylib.io.model.load_model(output_folder / "params.py")``
    and bombcell (:func:`bombcell_parameters`) read it.
    """
    if output_folder is None:
        raise ValueError("export_phy: give output_folder.")
    if analyzer is not None:
        # the sorted recording, when given, decides recording.dat's dtype and --no-binary's file
        source = recording if recording is not None else analyzer.recording
        sorting, sorter_folder = analyzer.sorting, None
    else:
        sorting, source, sorter_folder = _resolve(sorting_or_sorter_folder, recording)
    if sorting.get_num_segments() != 1:
        raise RecordingError(
            f"Phy reads one continuous recording and this sorting has {sorting.get_num_segments()} segments: export "
            "one segment at a time (sorting.select_segments([k]) with recording.select_segments([k])), or use "
            "the ALF format, which writes the segments end to end."
        )
    inputs = _inputs(sorting, source, sorter_folder)
    check_writable_output(output_folder, overwrite=overwrite, kind="phy-export", inputs=inputs,
                          option="overwrite=True (--overwrite)")  # before the slow part
    counts = sorting.count_num_spikes_per_unit(outputs="array")
    if not np.any(counts):
        raise RecordingError("The sorting has no spikes: there is nothing for Phy to show.")
    layout = None if copy_binary else _original_layout(source)
    job_kwargs = dict(job_kwargs or {})
    job_kwargs.setdefault("progress_bar", False)
    analyzer = _phy_analyzer(analyzer, sorting, source, counts > 0, compute_pc_features, job_kwargs)
    layout = layout or _copied_layout(source, analyzer.recording)
    with atomic_output(output_folder, kind="phy-export", overwrite=overwrite, inputs=inputs,
                       option="overwrite=True (--overwrite)") as tmp:
        _write_phy(Path(tmp), analyzer, source, layout, compute_pc_features, job_kwargs, export_kwargs)
    return Path(output_folder)


def _phy_analyzer(analyzer, sorting, source, has_spikes: np.ndarray, compute_pc_features: bool, job_kwargs: dict):
    """The analyzer of the units that have spikes (Phy cannot show the others), built when None."""
    if analyzer is None:
        return build_analyzer(sorting.select_units(sorting.unit_ids[has_spikes]), source, job_kwargs=job_kwargs,
                              waveforms=compute_pc_features)
    if compute_pc_features and not (analyzer.has_extension("principal_components")
                                    or analyzer.has_extension("waveforms")):
        raise ParameterError(
            "compute_pc_features=True needs the analyzer's 'waveforms' extension, computed before 'templates' "
            "(SpikeInterface drops the templates when waveforms come after them): analyzer.compute("
            "['random_spikes', 'waveforms', 'templates', ...]), or let export_phy build the analyzer."
        )
    return analyzer if np.all(has_spikes) else analyzer.select_units(analyzer.unit_ids[has_spikes])


def _write_phy(folder: Path, analyzer, source, layout: dict, compute_pc_features: bool, job_kwargs: dict,
               export_kwargs: dict) -> None:
    from spikeinterface.core import write_binary_recording
    from spikeinterface.exporters import export_to_phy

    for name in ("amplitude_scalings", "spike_amplitudes", "template_similarity"):
        if not analyzer.has_extension(name):
            analyzer.compute(name, **(job_kwargs if name != "template_similarity" else {}))
    export_to_phy(analyzer, folder, compute_pc_features=compute_pc_features, compute_amplitudes=False,
                  copy_binary=False, remove_if_exists=False, verbose=False, **export_kwargs, **job_kwargs)
    if "recording" in layout:
        write_kwargs = dict(job_kwargs)
        if not CHUNK_KEYS & set(write_kwargs):
            # SpikeInterface collects garbage after each chunk (0.3 s in a process holding torch):
            # 1 s chunks made that most of the copy's time
            write_kwargs["chunk_memory"] = "32M"
        write_binary_recording(layout.pop("recording"), file_paths=folder / "recording.dat", dtype=layout["dtype"],
                               **write_kwargs)
    _write_params_py(folder / "params.py", layout, analyzer.recording)
    if "channel_map" in layout:  # the original file's columns (a SpikeGLX file also holds its sync channel)
        np.save(folder / "channel_map.npy", np.asarray(layout["channel_map"], dtype=np.int32))
    n_channels = analyzer.get_num_channels()
    np.save(folder / "whitening_mat.npy", np.eye(n_channels))
    np.save(folder / "whitening_mat_inv.npy", np.eye(n_channels))
    np.save(folder / "templates.npy", _templates_in_data_units(analyzer))
    (folder / "template_ind.npy").unlink(missing_ok=True)  # dense templates: Kilosort's layout, bombcell's input
    np.save(folder / "amplitudes.npy", np.asarray(analyzer.get_extension("amplitude_scalings").get_data(), np.float64))
    in_uv = bool(analyzer.return_in_uV and analyzer.recording.has_scaleable_traces())
    np.save(folder / f"spike_amplitudes_{'uV' if in_uv else 'raw'}.npy",
            np.asarray(analyzer.get_extension("spike_amplitudes").get_data(), np.float64))
    _keep_non_numeric_unit_ids_readable(folder, analyzer.unit_ids)
    info = dict(
        sampling_frequency=analyzer.sampling_frequency, num_clusters=len(analyzer.unit_ids),
        num_spikes=int(analyzer.sorting.to_spike_vector().size), dat_path=layout["dat_path"],
        dtype=layout["dtype"], n_channels_dat=layout["n_channels_dat"], hp_filtered=layout["hp_filtered"],
        gain_to_uV=_uniform_gain(source if layout["dat_path"] != "recording.dat" else analyzer.recording),
        amplitudes="template scaling (SpikeInterface amplitude_scalings)",
        spike_amplitudes_unit="uV" if in_uv else "recording units",
        unit_ids=[str(u) for u in analyzer.unit_ids],
    )
    (folder / EXPORT_INFO).write_text(json.dumps(info, indent=2))


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


def bombcell_parameters(phy_folder, raw_data: bool = True, **overrides) -> dict:
    """bombcell's default parameters for a Phy folder written by :func:`export_phy`.

    bombcell reads the raw data as int16 with the channel count, sync channels and µV per
    bit of a SpikeGLX recording unless told otherwise; these come from the export
    (``params.py`` and ``deepspikesort_export.json``), everything else is bombcell's
    ``get_default_parameters(..., kilosort_version=4)``. ``raw_data=False`` gives bombcell no
    raw file (it then skips the raw-waveform metrics, amplitude and SNR); ``overrides``
    change any entry. Use: ``bombcell.run_bombcell(phy_folder, save_path, bombcell_parameters(phy_folder))``.
    """
    from bombcell import get_default_parameters
    from phylib.io.model import get_template_params

    phy_folder = Path(phy_folder)
    info = json.loads((phy_folder / EXPORT_INFO).read_text())
    params = get_template_params(phy_folder / "params.py")
    raw_file = str(params["dat_path"][0]) if raw_data and params["dat_path"] else None
    if raw_file is not None and (params["dtype"] != np.int16 or params.get("offset", 0)):
        raise RecordingError(
            f"bombcell reads raw data as int16 without a header, and {raw_file} is {params['dtype']} "
            f"(offset {params.get('offset', 0)}): the sorted recording has no int16 samples. Pass raw_data=False "
            "(bombcell then skips the raw-waveform metrics, amplitude and SNR), or sort an int16 recording."
        )
    if raw_file is not None and info.get("gain_to_uV") is None:
        raise RecordingError(
            "bombcell needs one µV-per-bit gain for all channels, and this recording has none (or several): set "
            "the recording's gains (recording.set_channel_gains(...)) before sorting, or pass raw_data=False."
        )
    param = get_default_parameters(phy_folder, raw_file=raw_file, kilosort_version=4, gain_to_uV=info.get("gain_to_uV"))
    n_channels = len(np.load(phy_folder / "channel_map.npy"))
    param.update(nChannels=int(params["n_channels_dat"]), nSyncChannels=int(params["n_channels_dat"]) - n_channels,
                 ephys_sample_rate=float(params["sample_rate"]))
    param.update(overrides)
    return param
