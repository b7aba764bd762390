"""IBL's ALF files of a sorting.

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

Several segments are written end to end, in one timeline (times and samples of
segment ``k`` follow those of segment ``k - 1``), as ``concatenate_recordings`` would.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import uuid
from pathlib import Path

import numpy as np

from ...errors import RecordingError
from ...output_folders import atomic_output
from ..analyzer import UNIT_LOCATION_METHOD, build_analyzer, unit_depths
from .common import EXPORT_INFO, _inputs, _original_binary, _resolve, _segment_offsets, _write_params_py

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


UUID_NAMESPACE = uuid.UUID("5b0d5ac4-2f0e-4a8e-9c55-0c7a3d1e8f10")  # deepspikesort's clusters


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
