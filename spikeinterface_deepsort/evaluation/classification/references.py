"""Loading a reference sorting, whatever wrote it, and checking it against a recording.

Three layouts are recognised from the files a folder holds:

- Kilosort / Phy: ``params.py`` and ``spike_times.npy`` (read with SpikeInterface's
  ``read_phy``; clusters a curator labelled "noise" are left out).
- IBL ALF: ``spikes.clusters.npy`` with ``spikes.samples.npy`` or ``spikes.times.npy``.
  Read here rather than with ``read_alf_sorting``, which needs the ONE-api package and
  ignores the times: samples are preferred because IBL's ``spikes.times`` are on the
  session's clock, which can drift from the probe's sample counter.
- A sorting saved by SpikeInterface (``sorting.save(folder=...)``, a ``.json``/``.pkl``
  dump) or a sorter's output folder written by ``run_sorter``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from spikeinterface.core import BaseSorting, NumpySorting

from ...errors import DataFormatError, RecordingError

REFERENCE_FORMATS = ("phy", "alf", "spikeinterface", "sorter_folder")

# IBL's probes sample at 30 kHz; used for ALF spike times when no recording says otherwise.
DEFAULT_ALF_SAMPLING_FREQUENCY = 30000.0


def detect_reference_format(path: str | Path) -> str:
    """Name the layout of the reference at ``path`` (one of ``REFERENCE_FORMATS``)."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"Reference {str(path)!r} does not exist. Give the path of a Kilosort/Phy folder, "
                              "an IBL ALF folder or a saved SpikeInterface sorting.")
    if path.is_dir():
        if (path / "params.py").is_file() and (path / "spike_times.npy").is_file():
            return "phy"
        if (path / "spikes.clusters.npy").is_file() and (
            (path / "spikes.samples.npy").is_file() or (path / "spikes.times.npy").is_file()
        ):
            return "alf"
        if (path / "spikeinterface_log.json").is_file() and (path / "sorter_output").is_dir():
            return "sorter_folder"
        if (path / "si_folder.json").is_file() or (path / "provenance.json").is_file():
            return "spikeinterface"
    if path.suffix in (".json", ".pkl", ".pickle", ".zarr"):
        return "spikeinterface"
    raise DataFormatError(
        f"Cannot tell what kind of sorting {str(path)!r} is. Expected a Kilosort/Phy folder (params.py + "
        "spike_times.npy), an IBL ALF folder (spikes.clusters.npy + spikes.times.npy or spikes.samples.npy), "
        "a folder saved with sorting.save(folder=...), or a run_sorter output folder."
    )


def read_alf_folder(folder: str | Path, sampling_frequency: float = DEFAULT_ALF_SAMPLING_FREQUENCY) -> NumpySorting:
    """An IBL ALF ``spikes`` object as a single-segment Sorting; times in seconds become samples."""
    folder = Path(folder)
    clusters = np.load(folder / "spikes.clusters.npy").ravel()
    if (folder / "spikes.samples.npy").is_file():
        samples = np.load(folder / "spikes.samples.npy").ravel().astype("int64")
    else:
        times = np.load(folder / "spikes.times.npy").ravel()
        samples = np.round(times * sampling_frequency).astype("int64")
    if len(samples) != len(clusters):
        raise DataFormatError(
            f"ALF folder {str(folder)!r}: spikes.clusters.npy has {len(clusters)} entries but the spike times have "
            f"{len(samples)}. Both files must come from the same sorting: re-export them together."
        )
    if not np.issubdtype(clusters.dtype, np.integer):
        raise DataFormatError(f"ALF folder {str(folder)!r}: spikes.clusters.npy must hold integer cluster ids, "
                              f"got {clusters.dtype}. Re-export the cluster ids as integers.")
    order = np.argsort(samples, kind="stable")
    return NumpySorting.from_samples_and_labels([samples[order]], [clusters[order]], sampling_frequency)


def load_sorting(path: str | Path, sampling_frequency: float | None = None) -> BaseSorting:
    """Load the sorting at ``path``, its format detected from the files it holds.

    ``sampling_frequency`` (usually the recording's) turns ALF times in seconds into
    samples; the other formats carry their own.
    """
    kind = detect_reference_format(path)
    if kind == "alf":
        return read_alf_folder(path, sampling_frequency or DEFAULT_ALF_SAMPLING_FREQUENCY)
    try:
        if kind == "phy":
            from spikeinterface.extractors import read_phy

            return read_phy(path, exclude_cluster_groups=["noise"])
        if kind == "sorter_folder":
            from spikeinterface.sorters import read_sorter_folder

            return read_sorter_folder(path, register_recording=False)
        import spikeinterface

        sorting = spikeinterface.load(path)
    except DataFormatError:
        raise
    except Exception as error:
        raise DataFormatError(f"Could not read the {kind} sorting at {str(path)!r}: {error}. "
                              "Check that the folder is complete and was written by the tool it claims to be.") from error
    if not isinstance(sorting, BaseSorting):
        raise DataFormatError(f"{str(path)!r} holds a {type(sorting).__name__}, not a sorting. "
                              "Give the path of a saved sorting (or a Kilosort/Phy or ALF folder).")
    return sorting


def as_sorting(reference, sampling_frequency: float | None = None) -> BaseSorting:
    """Accept a Sorting object as it is, or load one from a path."""
    if isinstance(reference, BaseSorting):
        return reference
    return load_sorting(reference, sampling_frequency)


def check_reference_matches_recording(recording, sorting: BaseSorting) -> None:
    """Refuse a reference that cannot describe ``recording``: other rate, segments or duration."""
    fs_recording, fs_sorting = recording.get_sampling_frequency(), sorting.get_sampling_frequency()
    if not np.isclose(fs_recording, fs_sorting, rtol=1e-6, atol=1e-3):
        raise RecordingError(
            f"The reference is sampled at {fs_sorting} Hz but the recording at {fs_recording} Hz. "
            "Give the recording the reference was sorted from (or fix the sample_rate in the reference's params.py)."
        )
    if sorting.get_num_segments() != recording.get_num_segments():
        raise RecordingError(
            f"The reference has {sorting.get_num_segments()} segment(s) but the recording has "
            f"{recording.get_num_segments()}. Give the recording the reference was sorted from."
        )
    for segment in range(recording.get_num_segments()):
        num_samples = recording.get_num_samples(segment)
        spikes = sorting.to_spike_vector(concatenated=False)[segment]["sample_index"]
        if len(spikes) and (spikes.min() < 0 or spikes.max() >= num_samples):
            raise RecordingError(
                f"The reference has spikes outside the recording (segment {segment}: spike samples "
                f"{int(spikes.min())}..{int(spikes.max())}, recording has {num_samples} samples, "
                f"{num_samples / fs_recording:.1f} s). The reference was sorted from another or longer recording: "
                "give the matching recording."
            )
