"""Loading a recording from a path given on the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import RecordingError

RAW_SUFFIXES = {".bin", ".dat", ".raw"}


def load_recording(path, sampling_frequency=None, num_channels=None, dtype=None, probe=None, stream_id=None):
    """Open anything SpikeInterface can load: a saved recording folder or JSON, a SpikeGLX
    folder, an NWB file, or a raw binary file (which needs its sampling frequency,
    channel count, dtype and a probe file for the channel positions)."""
    import spikeinterface.core as sic
    import spikeinterface.extractors as se

    path = Path(path)
    if not path.exists():
        raise RecordingError(f"Recording path {path} does not exist.")
    if path.is_dir():
        if any(path.glob("*.meta")) or any(path.glob("*/*.ap.meta")):
            recording = se.read_spikeglx(path, stream_id=stream_id or _spikeglx_ap_stream(path))
        elif (path / "si_folder.json").exists() or (path / "binary.json").exists() or (path / "provenance.json").exists():
            recording = sic.load(path)
        else:
            raise RecordingError(
                f"{path} is a folder but neither a saved SpikeInterface recording (recording.save(folder=...)) "
                "nor a SpikeGLX folder (*.bin with *.meta)."
            )
    elif path.suffix == ".nwb":
        recording = se.read_nwb_recording(path)
    elif path.suffix in (".json", ".pkl", ".pickle"):
        recording = sic.load(path)
    elif path.suffix in RAW_SUFFIXES:
        missing = [name for name, value in (("--sampling-frequency", sampling_frequency),
                                            ("--num-channels", num_channels), ("--dtype", dtype)) if value is None]
        if missing:
            raise RecordingError(f"Raw binary file {path.name}: also give {', '.join(missing)} (and --probe for the channel positions).")
        recording = sic.read_binary(path, sampling_frequency=float(sampling_frequency), dtype=np.dtype(dtype),
                                    num_channels=int(num_channels))
    else:
        raise RecordingError(
            f"Do not know how to read {path.name}: give a saved recording folder, a SpikeGLX folder, an .nwb file, "
            "or a raw .bin/.dat file with --sampling-frequency, --num-channels and --dtype."
        )
    if probe is not None:
        recording = recording.set_probe(_read_probe(probe), group_mode="by_shank")
    return recording


def _spikeglx_ap_stream(folder: Path) -> str | None:
    from spikeinterface.extractors import get_neo_streams

    names, ids = get_neo_streams("spikeglx", folder)
    ap = [stream for stream in ids if stream.endswith(".ap")]
    return ap[0] if ap else (ids[0] if ids else None)


def _read_probe(path):
    import probeinterface as pi

    path = Path(path)
    if path.suffix == ".prb":
        return pi.read_prb(path).probes[0]
    return pi.read_probeinterface(path).probes[0]
