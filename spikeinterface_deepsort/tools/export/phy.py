"""Phy's template-gui folder of a sorting, in Kilosort's format, and bombcell's parameters for it.

``export_phy`` writes Phy's template-gui folder in Kilosort's format, so that tools built
for Kilosort folders (phylib, bombcell) read it: ``whitening_mat.npy`` and
``whitening_mat_inv.npy`` (identity: nothing is whitened), ``templates.npy`` dense and
in the units of ``recording.dat``, ``amplitudes.npy`` the positive template scaling of
each spike (SpikeInterface's ``amplitude_scalings``: spike ≈ amplitude × template), the
µV peak amplitudes in ``spike_amplitudes_uV.npy``, and ``recording.dat`` in the sorted
recording's integer dtype when it has one (see :func:`export_phy`).

Phy reads one continuous file: a multi-segment sorting is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import ParameterError, RecordingError
from ...output_folders import atomic_output, check_writable_output
from ..analyzer import build_analyzer
from .common import EXPORT_INFO, _inputs, _original_binary, _resolve, _write_params_py

CHUNK_KEYS = {"chunk_size", "chunk_memory", "total_memory", "chunk_duration"}  # SpikeInterface's job_kwargs


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
