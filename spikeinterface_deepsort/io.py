"""Loading a recording from a path given on the command line.

Every mistake a shell user can make here (a missing file, an unknown dtype, a file size
that is not whole frames, bytes that are not the dtype given, a probe that does not fit)
is a :class:`RecordingError` naming the shell option that fixes it, raised before any
long work starts.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from .errors import RecordingError

RAW_SUFFIXES = {".bin", ".dat", ".raw"}
RAW_OPTIONS = ("--sampling-frequency", "--num-channels", "--dtype")
SAMPLE_DTYPES = ("int16", "uint16", "int32", "uint32", "int8", "uint8", "float32", "float64")
DTYPE_CHECK_BYTES = 1 << 20  # the first MiB of a raw file is enough to tell floats from integers


def load_recording(path, sampling_frequency=None, num_channels=None, dtype=None, probe=None, stream_id=None):
    """Open anything SpikeInterface can load: a saved recording folder or JSON, a SpikeGLX
    folder, an NWB file, or a raw binary file (which needs its sampling frequency,
    channel count, dtype and a probe file for the channel positions)."""
    path = Path(path)
    if not path.exists():
        siblings = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
        close = difflib.get_close_matches(path.name, siblings, n=1, cutoff=0.6)
        hint = f" Did you mean {path.parent / close[0]}?" if close else ""
        raise RecordingError(f"Recording path {path} does not exist.{hint} Check the RECORDING argument.")
    raw_options = dict(zip(RAW_OPTIONS, (sampling_frequency, num_channels, dtype)))
    if path.is_file() and path.suffix in RAW_SUFFIXES:
        recording = _read_raw_binary(path, sampling_frequency, num_channels, dtype)
    else:
        given = [name for name, value in raw_options.items() if value is not None]
        if given:
            raise RecordingError(
                f"{', '.join(given)} describe a raw binary file (.bin, .dat, .raw), but {path} is not one: its format "
                f"carries the sampling frequency, channels and dtype itself. Drop {', '.join(given)}."
            )
        try:
            recording = _read_known_format(path, stream_id)
        except RecordingError:
            raise
        except Exception as error:  # any reader's failure: a damaged, partial or unsupported file
            raise RecordingError(
                f"SpikeInterface could not open {path} ({type(error).__name__}: {str(error).splitlines()[0][:300]}). "
                "Check that RECORDING is complete and in a format SpikeInterface reads "
                "(a saved recording folder, a SpikeGLX folder, an .nwb file, or a raw binary file)."
            ) from error
    if probe is not None:
        recording = attach_probe(recording, read_probe_file(probe))
    return recording


def _read_known_format(path: Path, stream_id):
    import spikeinterface.core as sic
    import spikeinterface.extractors as se

    if path.is_dir():
        if any(path.glob("*.meta")) or any(path.glob("*/*.ap.meta")):
            return se.read_spikeglx(path, stream_id=stream_id or _spikeglx_ap_stream(path))
        if (path / "si_folder.json").exists() or (path / "binary.json").exists() or (path / "provenance.json").exists():
            return sic.load(path)
        raise RecordingError(
            f"{path} is a folder but neither a saved SpikeInterface recording (recording.save(folder=...)) "
            "nor a SpikeGLX folder (*.bin with *.meta)."
        )
    if path.suffix == ".nwb":
        return se.read_nwb_recording(path)
    if path.suffix in (".json", ".pkl", ".pickle"):
        return sic.load(path)
    raise RecordingError(
        f"Do not know how to read {path.name}: give a saved recording folder, a SpikeGLX folder, an .nwb file, "
        f"or a raw {'/'.join(sorted(RAW_SUFFIXES))} file with --sampling-frequency, --num-channels and --dtype."
    )


def _read_raw_binary(path: Path, sampling_frequency, num_channels, dtype):
    import spikeinterface.core as sic

    missing = [name for name, value in zip(RAW_OPTIONS, (sampling_frequency, num_channels, dtype)) if value is None]
    if missing:
        raise RecordingError(
            f"Raw binary file {path.name}: also give {', '.join(missing)} (and --probe for the channel positions)."
        )
    if not (np.isfinite(sampling_frequency) and sampling_frequency > 0):
        raise RecordingError(f"--sampling-frequency must be a positive number of Hz, got {sampling_frequency}.")
    if num_channels < 1:
        raise RecordingError(f"--num-channels must be at least 1, got {num_channels}.")
    sample_dtype = parse_sample_dtype(dtype)
    size = path.stat().st_size
    frame_bytes = sample_dtype.itemsize * num_channels
    if size == 0 or size % frame_bytes:
        raise RecordingError(
            f"{path.name} holds {size} bytes, which is not a whole number of frames of {num_channels} channels x "
            f"{sample_dtype.itemsize} bytes ({sample_dtype.name}) = {frame_bytes} bytes: --num-channels or --dtype is "
            "wrong (or the file has a header, which this reader does not skip)."
        )
    _check_bytes_match_dtype(path, sample_dtype)
    return sic.read_binary(path, sampling_frequency=float(sampling_frequency), dtype=sample_dtype,
                           num_channels=int(num_channels))


def parse_sample_dtype(text) -> np.dtype:
    """``--dtype`` as a NumPy sample type, or an error that suggests the nearest valid name."""
    try:
        sample_dtype = np.dtype(text)
    except TypeError:
        sample_dtype = None
    if sample_dtype is None or sample_dtype.kind not in "iuf":
        close = difflib.get_close_matches(str(text), SAMPLE_DTYPES, n=2, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise RecordingError(f"--dtype {text!r} is not a sample type: {hint}Use one of {', '.join(SAMPLE_DTYPES)}.")
    return sample_dtype


def _plausible_floats(values: np.ndarray) -> bool:
    """Do these numbers look like a signal? Integer samples read as floats give mostly NaNs,
    infinities and numbers below 1e-19 (their sign and exponent bits are an integer's high bits)."""
    finite = values[np.isfinite(values)]
    if finite.size < 0.999 * values.size or not np.any(finite):
        return False
    magnitude = np.abs(finite[finite != 0])
    return bool(np.mean((magnitude > 1e-12) & (magnitude < 1e12)) > 0.99)


def _check_bytes_match_dtype(path: Path, sample_dtype: np.dtype) -> None:
    """Refuse a dtype that the file's first bytes contradict, naming the dtype they fit."""
    head = np.fromfile(path, dtype=np.uint8, count=DTYPE_CHECK_BYTES)
    fitting = [name for name in ("float32", "float64")
               if head.size >= 4096 and head.size % np.dtype(name).itemsize == 0
               and _plausible_floats(head.view(name))]
    if sample_dtype.kind == "f" and sample_dtype.name not in fitting:
        other = f" They do read as {fitting[0]}." if fitting else " Integer samples (e.g. int16) read as floats look like this."
        raise RecordingError(
            f"The bytes of {path.name} are not {sample_dtype.name} samples (read so they give NaNs, infinities or "
            f"numbers below 1e-12).{other} Check --dtype."
        )
    if sample_dtype.kind in "iu" and fitting:
        raise RecordingError(
            f"{path.name} looks like {fitting[0]} samples, not {sample_dtype.name}: read as {fitting[0]} its first "
            f"MiB is a plausible signal, which integer samples almost never are. Pass --dtype {fitting[0]}."
        )


def read_probe_file(path):
    """The first probe of a probeinterface JSON file or a .prb file, or an error naming the file."""
    import probeinterface as pi

    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"Probe file {path} does not exist. Check --probe (a probeinterface .json or a .prb file).")
    try:
        group = pi.read_prb(path) if path.suffix == ".prb" else pi.read_probeinterface(path)
    except Exception as error:  # probeinterface raises many types for a file it cannot parse
        raise RecordingError(
            f"Probe file {path} could not be read ({type(error).__name__}: {error}). --probe takes a file written by "
            "probeinterface.write_probeinterface (.json) or a .prb file."
        ) from error
    if not group.probes:
        raise RecordingError(f"Probe file {path} holds no probe. Check --probe.")
    return group.probes[0]


def attach_probe(recording, probe):
    """``recording`` with ``probe``'s contact positions (set in place, as SpikeInterface's ``set_probe`` does).

    A probe without wiring (``device_channel_indices``) is taken to list its contacts in the
    file's channel order, which is what a probe written for one recording means; a probe
    without shank ids is one group.
    """
    n_channels = recording.get_num_channels()
    if probe.get_contact_count() != n_channels:
        raise RecordingError(
            f"The probe has {probe.get_contact_count()} contacts but the recording has {n_channels} channels. "
            "Give the probe file of this recording (--probe), or the right --num-channels."
        )
    probe = probe.copy() if probe.device_channel_indices is None else probe
    if probe.device_channel_indices is None:
        probe.set_device_channel_indices(np.arange(n_channels))
    wired = np.asarray(probe.device_channel_indices)
    if np.any(wired >= n_channels) or np.any(wired < 0) or len(np.unique(wired)) != len(wired):
        raise RecordingError(
            f"The probe's device_channel_indices ({wired.min()}..{wired.max()}) do not map its contacts one to one "
            f"onto the recording's {n_channels} channels. Fix the probe file's wiring (--probe)."
        )
    has_shanks = probe.shank_ids is not None and all(str(s) != "" for s in probe.shank_ids)
    recording.set_probe(probe, group_mode="by_shank" if has_shanks else "by_probe")
    return recording


def _spikeglx_ap_stream(folder: Path) -> str | None:
    from spikeinterface.extractors import get_neo_streams

    names, ids = get_neo_streams("spikeglx", folder)
    ap = [stream for stream in ids if stream.endswith(".ap")]
    return ap[0] if ap else (ids[0] if ids else None)
