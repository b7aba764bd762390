"""IBL end to end: a SpikeGLX .bin/.meta pair written here -> IBL preset -> sort -> ALF and Phy.

The SpikeGLX pair imitates an IBL Neuropixels 1.0 (3B2, part PRB_1_4_0480_1) recording
saved with a subset of its channels: int16 samples at 2.34375 µV per bit (AP gain 500,
±0.6 V range, 10-bit ADC), the sync channel last, and a ``.meta`` file with the keys that
neo's SpikeGLX reader and probeinterface read (imroTbl for the geometry, the ADC
multiplexing that gives ``inter_sample_shift`` and so the phase shift). The spikes are
SpikeInterface's generated ground truth on the same contacts.
"""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import spikeinterface.core as sic
import spikeinterface.extractors as se
from probeinterface.neuropixels_tools import build_neuropixels_probe

from spikeinterface_deepsort.cli.main import main as cli_main
from spikeinterface_deepsort.io import load_recording
from spikeinterface_deepsort.stages.preprocessing import _ibl_front_end

PART_NUMBER = "PRB_1_4_0480_1"  # Neuropixels 1.0 as IBL recorded it (imDatPrb_type=0)
UV_PER_BIT = 0.6 / 512 / 500 * 1e6  # imAiRangeMax / imMaxInt / AP gain, in µV
FS = 30000.0


def neuropixels1_probe(num_channels):
    """The first ``num_channels`` contacts of a Neuropixels 1.0 (bank 0), built offline."""
    probe = build_neuropixels_probe(PART_NUMBER).get_slice(np.arange(num_channels))
    probe.set_device_channel_indices(np.arange(num_channels))
    return probe


def write_spikeglx(folder, traces_uv, run_name="ibltest", dead_channels=()):
    """Write ``traces_uv`` (samples x channels, µV) as SpikeGLX ``{run}_g0_t0.imec0.ap.bin/.meta``.

    Channels are the first ones of a Neuropixels 1.0 bank 0 (``snsSaveChanSubset``), a zero
    sync channel is appended, and ``dead_channels`` are written as zeros. Returns the run
    folder (``{folder}/{run}_g0``), which ``read_spikeglx`` and ``load_recording`` open.
    """
    num_samples, num_channels = traces_uv.shape
    run_folder = Path(folder) / f"{run_name}_g0"
    probe_folder = run_folder / f"{run_name}_g0_imec0"
    probe_folder.mkdir(parents=True, exist_ok=True)
    name = f"{run_name}_g0_t0.imec0.ap"
    data = np.zeros((num_samples, num_channels + 1), dtype=np.int16)
    data[:, :num_channels] = np.clip(np.round(traces_uv / UV_PER_BIT), -512, 511)
    data[:, list(dead_channels)] = 0
    bin_file = probe_folder / f"{name}.bin"
    data.tofile(bin_file)

    sync = 768  # the sync channel's index in an NP1.0 acquisition (384 AP + 384 LF + SY)
    meta = {
        "acqApLfSy": "384,384,1",
        "appVersion": "20190327",
        "fileCreateTime": "2024-01-01T00:00:00",
        "fileName": str(bin_file.absolute()),
        "fileSizeBytes": bin_file.stat().st_size,
        "fileTimeSecs": num_samples / FS,
        "firstSample": 0,
        "imAiRangeMax": 0.6,
        "imAiRangeMin": -0.6,
        "imMaxInt": 512,
        "imDatPrb_pn": PART_NUMBER,
        "imDatPrb_type": 0,
        "imDatPrb_sn": "18005116372",
        "imDatPrb_port": 1,
        "imDatPrb_slot": 2,
        "imSampRate": FS,
        "nSavedChans": num_channels + 1,
        "snsApLfSy": f"{num_channels},0,1",
        "snsSaveChanSubset": f"0:{num_channels - 1},{sync}",
        "typeThis": "imec",
        # per channel: channel, bank, reference, AP gain, LF gain, AP high-pass filter on
        "~imroTbl": "(0,384)" + "".join(f"({c} 0 0 500 250 1)" for c in range(384)),
        "~snsChanMap": "(384,384,1)" + "".join(f"(AP{c};{c}:{c})" for c in range(num_channels)) + f"(SY0;{sync}:{sync})",
        "~snsShankMap": "(1,2,480)" + "".join(f"(0:{c % 2}:{c // 2}:1)" for c in range(num_channels)),
    }
    (probe_folder / f"{name}.meta").write_text("".join(f"{key}={value}\n" for key, value in meta.items()))
    return run_folder


@pytest.fixture(scope="module")
def spikeglx_case(tmp_path_factory):
    """32 channels, 4 s, 8 generated units, channel 10 dead: (run folder, ground truth, traces in µV)."""
    folder = tmp_path_factory.mktemp("spikeglx")
    probe = neuropixels1_probe(32)
    recording, gt = sic.generate_ground_truth_recording(durations=[4.0], sampling_frequency=FS, probe=probe,
                                                        num_units=8, seed=7)
    traces = recording.get_traces()
    return write_spikeglx(folder, traces, dead_channels=[10]), gt, traces


def test_written_spikeglx_reads_back_as_neuropixels(spikeglx_case):
    run_folder, _, traces = spikeglx_case
    recording = se.read_spikeglx(run_folder, stream_id="imec0.ap")
    assert recording.get_num_channels() == 32
    assert recording.get_sampling_frequency() == FS
    assert recording.get_num_samples() == traces.shape[0]
    assert recording.get_dtype() == np.int16
    np.testing.assert_allclose(recording.get_channel_gains(), UV_PER_BIT)
    # the geometry is the Neuropixels 1.0 one, from the imroTbl
    np.testing.assert_allclose(recording.get_channel_locations(), neuropixels1_probe(32).contact_positions)
    assert "inter_sample_shift" in recording.get_property_keys()
    # the µV traces are the generated ones up to the int16 quantisation (channel 10 is dead)
    live = np.delete(np.arange(32), 10)
    scaled = recording.get_traces(return_in_uV=True)
    assert np.abs(scaled[:, live] - traces[:, live]).max() <= UV_PER_BIT / 2 + 1e-3
    assert np.all(scaled[:, 10] == 0)
    # load_recording (the command line's loader) finds the AP stream by itself
    loaded = load_recording(run_folder)
    assert loaded.get_num_channels() == 32 and loaded.get_num_samples() == traces.shape[0]


def test_ibl_front_end_interpolates_the_dead_channel(spikeglx_case, caplog):
    run_folder, _, _ = spikeglx_case
    recording = se.read_spikeglx(run_folder, stream_id="imec0.ap")
    with caplog.at_level("INFO", logger="spikeinterface_deepsort"):
        front = _ibl_front_end(recording, seed=0)
    assert any("AP10" in message and "interpolating" in message for message in caplog.messages)
    assert front.get_num_channels() == 32 and front.get_dtype() == np.float32
    chunk = front.get_traces(start_frame=0, end_frame=6000)
    assert np.all(np.isfinite(chunk))
    assert chunk[:, 10].std() > 0.1 * np.median(chunk.std(axis=0))  # the dead channel now carries signal
    # seeded: the same seed gives the same preprocessing
    np.testing.assert_array_equal(chunk, _ibl_front_end(recording, seed=0).get_traces(start_frame=0, end_frame=6000))


def test_spikeglx_to_ibl_sort_to_alf_and_phy(spikeglx_case, tmp_path):
    import spikeinterface.sorters as ss

    run_folder, _, _ = spikeglx_case
    recording = load_recording(run_folder)
    sorter_folder = tmp_path / "sorted"
    sorting = ss.run_sorter("deepspikesort", recording, folder=sorter_folder, preset="ibl", max_rounds=2,
                            steps_per_round=20, seed=0, job_kwargs=dict(n_jobs=1, progress_bar=False), verbose=False)
    log = (sorter_folder / "sorter_output" / "deepspikesort.log").read_text()
    assert "interpolating" in log and "AP10" in log  # the IBL preset ran, dead channel included
    unit_ids = list(sorting.unit_ids)
    assert len(unit_ids) > 0
    counts = [len(sorting.get_unit_spike_train(u)) for u in unit_ids]

    # ALF, through the command line
    alf = tmp_path / "alf"
    assert cli_main(["-q", "export", str(sorter_folder), "--format", "alf", "--output", str(alf)]) == 0
    for name in ("spikes.times", "spikes.samples", "spikes.clusters", "spikes.amps", "spikes.depths",
                 "clusters.channels", "clusters.depths", "clusters.amps"):
        assert (alf / f"{name}.npy").exists(), name
    clusters, samples = np.load(alf / "spikes.clusters.npy"), np.load(alf / "spikes.samples.npy")
    assert len(np.load(alf / "clusters.channels.npy")) == len(unit_ids)
    assert list(np.bincount(clusters, minlength=len(unit_ids))) == counts
    if importlib.util.find_spec("one") is not None:  # read_alf_sorting needs ONE-api
        alf_sorting = se.read_alf_sorting(alf, sampling_frequency=FS)
        assert len(alf_sorting.unit_ids) == len(unit_ids)
        assert [len(alf_sorting.get_unit_spike_train(i)) for i in alf_sorting.unit_ids] == counts
        for index, unit in enumerate(unit_ids):
            np.testing.assert_array_equal(alf_sorting.get_unit_spike_train(index), sorting.get_unit_spike_train(unit))
    else:
        for index, unit in enumerate(unit_ids):
            np.testing.assert_array_equal(samples[clusters == index], sorting.get_unit_spike_train(unit))
    times, amps, depths = (np.load(alf / f"spikes.{a}.npy") for a in ("times", "amps", "depths"))
    assert times.dtype == np.float64 and np.all(np.diff(times) >= 0) and times.max() < 4.0
    assert np.all(amps > 0) and np.all(amps < 1e-3)  # volts: tens to hundreds of µV
    span = recording.get_channel_locations()[:, 1]
    assert np.all((depths >= span.min() - 1) & (depths <= span.max() + 1))

    # Phy, through the command line
    phy = tmp_path / "phy"
    assert cli_main(["-q", "export", str(sorter_folder), "--format", "phy", "--output", str(phy)]) == 0
    assert (phy / "params.py").exists() and (phy / "recording.dat").exists()
    phy_sorting = se.read_phy(phy)
    nonempty = [c for c in counts if c > 0]
    assert len(phy_sorting.unit_ids) == len(nonempty)
    assert sorted(len(phy_sorting.get_unit_spike_train(u)) for u in phy_sorting.unit_ids) == sorted(nonempty)

    # an existing output folder is refused unless --overwrite
    assert cli_main(["-q", "export", str(sorter_folder), "--format", "alf", "--output", str(alf)]) == 2


def test_read_ibl_recording_is_available():
    """IBL streaming (ONE) needs the network: only the entry point is checked here."""
    assert callable(se.read_ibl_recording)
    from spikeinterface.extractors.iblextractors import IblRecordingExtractor

    assert callable(IblRecordingExtractor.get_stream_names)


@pytest.mark.skipif(os.environ.get("DEEPSPIKESORT_NETWORK_TESTS") != "1",
                    reason="IBL streaming needs the network and an ONE account; set DEEPSPIKESORT_NETWORK_TESTS=1 to run it")
def test_read_ibl_recording_streams_a_session(tmp_path):
    if importlib.util.find_spec("brainbox") is None:
        pytest.skip("read_ibl_recording needs ibllib's brainbox (pip install ibllib)")
    eid = os.environ.get("DEEPSPIKESORT_IBL_EID", "")  # e.g. the sub-CSHL049 session
    if not eid:
        pytest.skip("set DEEPSPIKESORT_IBL_EID to a session id to stream")
    from spikeinterface.extractors.iblextractors import IblRecordingExtractor

    streams = IblRecordingExtractor.get_stream_names(eid=eid, cache_folder=tmp_path)
    ap = [s for s in streams if s.endswith(".ap")]
    recording = se.read_ibl_recording(eid=eid, stream_name=ap[0], cache_folder=tmp_path)
    assert recording.get_num_channels() == 384
