"""io.load_recording and its helpers, called from Python: raw binary files, probes, saved recordings.

The command line's refusals of the same mistakes (one line, exit 2, the user's folder untouched)
are in test_bad_inputs.py.
"""

import numpy as np
import probeinterface as pi
import pytest
import spikeinterface.core as sic

from spikeinterface_deepsort.errors import RecordingError
from spikeinterface_deepsort.io import (_plausible_floats, attach_probe, load_recording, parse_sample_dtype,
                                        read_probe_file)

FS = 20000.0


@pytest.fixture
def raw(tmp_path):
    """A 4-channel int16 file of 1 s and its tetrode probe (wired in file order)."""
    traces = np.random.default_rng(0).normal(0, 300, size=(int(FS), 4)).astype("int16")
    traces.tofile(tmp_path / "rec.bin")
    probe = pi.generate_tetrode()
    probe.set_device_channel_indices(np.arange(4))
    pi.write_probeinterface(tmp_path / "probe.json", probe)
    return tmp_path, traces


def test_a_raw_file_reads_back_with_its_probe(raw):
    folder, traces = raw
    recording = load_recording(folder / "rec.bin", FS, 4, "int16", folder / "probe.json")
    assert recording.get_sampling_frequency() == FS and recording.get_dtype() == np.int16
    np.testing.assert_array_equal(recording.get_traces(), traces)
    np.testing.assert_allclose(recording.get_channel_locations(), pi.generate_tetrode().contact_positions)


@pytest.mark.parametrize("probe_kind", ["json_without_shanks", "prb"])
def test_probes_people_have_are_read(raw, probe_kind):
    folder, _ = raw
    probe = pi.generate_tetrode()
    if probe_kind == "prb":
        probe.set_device_channel_indices(np.arange(4))
        group = pi.ProbeGroup()
        group.add_probe(probe)
        pi.write_prb(folder / "probe.prb", group)
        path = folder / "probe.prb"
    else:  # no wiring and no shank ids: the contacts are the file's channels in order
        probe._shank_ids = None
        pi.write_probeinterface(folder / "bare.json", probe)
        path = folder / "bare.json"
    recording = load_recording(folder / "rec.bin", FS, 4, "int16", path)
    assert recording.has_probe()
    assert np.allclose(recording.get_channel_locations(), pi.generate_tetrode().contact_positions)


def test_raw_file_settings_are_checked(raw):
    folder, _ = raw
    with pytest.raises(RecordingError, match="also give --num-channels, --dtype"):
        load_recording(folder / "rec.bin", sampling_frequency=FS)
    with pytest.raises(RecordingError, match="--sampling-frequency must be a positive"):
        load_recording(folder / "rec.bin", float("nan"), 4, "int16")
    with pytest.raises(RecordingError, match="--num-channels must be at least 1"):
        load_recording(folder / "rec.bin", FS, 0, "int16")
    with pytest.raises(RecordingError, match="not a whole number of frames of 3 channels"):
        load_recording(folder / "rec.bin", FS, 3, "int16")


def test_sample_types_are_numpys_integers_and_floats():
    assert parse_sample_dtype("int16") == np.dtype("int16")
    assert parse_sample_dtype(np.float32) == np.dtype("float32")
    with pytest.raises(RecordingError, match="did you mean uint16 or int16"):
        parse_sample_dtype("unt16")
    for wrong in ("complex64", "bool", "datetime64[s]"):
        with pytest.raises(RecordingError, match="not a sample type"):
            parse_sample_dtype(wrong)


def test_float_bytes_are_told_from_integer_bytes():
    signal = np.random.default_rng(1).normal(0, 50, size=40_000).astype("float32")
    assert _plausible_floats(signal)
    integers = np.random.default_rng(1).normal(0, 50, size=80_000).astype("int16")
    assert not _plausible_floats(integers.view("float32"))  # int16 samples read as float32
    assert not _plausible_floats(np.zeros(1000, dtype="float32"))  # all zeros: no signal


def test_attach_probe_wires_contacts_in_file_order_and_refuses_a_misfit():
    recording = sic.generate_recording(num_channels=4, durations=[0.5], sampling_frequency=FS)
    probe = pi.generate_tetrode()
    assert probe.device_channel_indices is None
    attached = attach_probe(recording, probe)
    assert probe.device_channel_indices is None  # the caller's probe is not changed
    np.testing.assert_array_equal(attached.get_probe().device_channel_indices, np.arange(4))
    wide = pi.generate_linear_probe(num_elec=8)
    with pytest.raises(RecordingError, match="8 contacts but the recording has 4 channels"):
        attach_probe(recording, wide)
    doubled = pi.generate_tetrode()
    doubled.set_device_channel_indices([0, 0, 1, 2])
    with pytest.raises(RecordingError, match="do not map its contacts one to one"):
        attach_probe(recording, doubled)


def test_probe_files_that_are_missing_or_not_probes(tmp_path):
    with pytest.raises(RecordingError, match="does not exist. Check --probe"):
        read_probe_file(tmp_path / "probe.json")
    (tmp_path / "notes.json").write_text('{"my": "notes"}')
    with pytest.raises(RecordingError, match="could not be read"):
        read_probe_file(tmp_path / "notes.json")


def test_saved_recordings_load_and_other_paths_are_named(tmp_path):
    recording = sic.generate_recording(num_channels=3, durations=[0.5], sampling_frequency=FS, seed=2)
    saved = recording.save(folder=tmp_path / "saved")
    saved.dump_to_json(tmp_path / "saved.json")
    for path in (tmp_path / "saved", tmp_path / "saved.json"):
        np.testing.assert_array_equal(load_recording(path).get_traces(), recording.get_traces())
    with pytest.raises(RecordingError, match="carries the sampling frequency.*Drop --sampling-frequency"):
        load_recording(tmp_path / "saved", sampling_frequency=FS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordingError, match="neither a saved SpikeInterface recording"):
        load_recording(tmp_path / "empty")
    (tmp_path / "traces.txt").write_text("1 2 3")
    with pytest.raises(RecordingError, match="Do not know how to read traces.txt"):
        load_recording(tmp_path / "traces.txt")
