"""export_to_alf / export_phy on a generated recording and its ground-truth sorting."""

import json

import numpy as np
import pytest
import spikeinterface.core as sic
import spikeinterface.extractors as se

from spikeinterface_deepsort.errors import OutputFolderError, RecordingError
from spikeinterface_deepsort.export import build_analyzer, export_phy, export_to_alf

FS = 30000.0


@pytest.fixture(scope="module")
def case():
    recording, sorting = sic.generate_ground_truth_recording(durations=[3.0], sampling_frequency=FS, num_channels=16,
                                                            num_units=5, seed=5)
    # string unit ids, as many sorters give: ALF must map them to 0..n-1
    sorting = sorting.rename_units([f"u{u}" for u in sorting.unit_ids])
    return recording, sorting


@pytest.fixture(scope="module")
def analyzer(case):
    recording, sorting = case
    return build_analyzer(sorting, recording)


def test_alf_files_and_units(case, analyzer, tmp_path):
    recording, sorting = case
    out = export_to_alf(sorting, recording, tmp_path / "alf", analyzer=analyzer)
    spike_vector = sorting.to_spike_vector()
    n_spikes, n_units = len(spike_vector), len(sorting.unit_ids)

    times = np.load(out / "spikes.times.npy")
    samples = np.load(out / "spikes.samples.npy")
    clusters = np.load(out / "spikes.clusters.npy")
    amps = np.load(out / "spikes.amps.npy")
    depths = np.load(out / "spikes.depths.npy")
    assert times.dtype == np.float64 and times.shape == (n_spikes,)
    np.testing.assert_allclose(times, samples / FS)
    np.testing.assert_array_equal(samples, spike_vector["sample_index"])
    assert clusters.dtype.kind == "i"
    np.testing.assert_array_equal(clusters, spike_vector["unit_index"])
    assert amps.shape == depths.shape == (n_spikes,)

    # amplitudes in volts (positive), as IBL; SpikeInterface's are µV on the main channel
    si_amps = analyzer.get_extension("spike_amplitudes").get_data()
    np.testing.assert_allclose(amps, np.abs(si_amps) * 1e-6, rtol=1e-6)
    assert np.all(amps > 0) and np.all(amps < 1e-3)
    y = recording.get_channel_locations()[:, 1]
    assert np.all((depths >= y.min() - 1) & (depths <= y.max() + 1))

    channels = np.load(out / "clusters.channels.npy")
    cluster_depths = np.load(out / "clusters.depths.npy")
    cluster_amps = np.load(out / "clusters.amps.npy")
    assert channels.shape == cluster_depths.shape == cluster_amps.shape == (n_units,)
    np.testing.assert_array_equal(channels, analyzer.get_main_channels(outputs="index"))
    for i in range(n_units):
        assert cluster_amps[i] == pytest.approx(np.median(amps[clusters == i]))
    assert list(np.load(out / "clusters.unitIds.npy")) == list(sorting.unit_ids)
    waveforms = np.load(out / "clusters.waveforms.npy")
    assert waveforms.shape[0] == n_units and waveforms.shape[2] == 16
    np.testing.assert_array_equal(np.load(out / "clusters.waveformsChannels.npy")[:, 0], channels)
    np.testing.assert_allclose(np.load(out / "channels.localCoordinates.npy"), recording.get_channel_locations())
    info = json.loads((out / "deepspikesort_export.json").read_text())
    assert info["amplitude_unit"] == "V" and info["num_spikes"] == n_spikes


def test_alf_reads_back_with_read_alf_sorting(case, analyzer, tmp_path):
    pytest.importorskip("one.alf.io", reason="read_alf_sorting needs the ONE-api package (pip install ONE-api)")
    recording, sorting = case
    out = export_to_alf(sorting, recording, tmp_path / "alf", analyzer=analyzer)
    back = se.read_alf_sorting(out, sampling_frequency=FS)
    assert len(back.unit_ids) == len(sorting.unit_ids)
    for index, unit in enumerate(sorting.unit_ids):
        np.testing.assert_array_equal(back.get_unit_spike_train(index), sorting.get_unit_spike_train(unit))


def test_alf_builds_its_own_analyzer_from_a_raw_recording(case, tmp_path):
    """Without an analyzer, the unfiltered recording is band-passed before amplitudes are measured."""
    recording, sorting = case
    small = sorting.select_units(sorting.unit_ids[:2])
    out = export_to_alf(small, recording, tmp_path / "alf")
    assert np.load(out / "spikes.clusters.npy").max() == 1
    assert np.all(np.load(out / "spikes.amps.npy") > 0)
    with pytest.raises(OutputFolderError):
        export_to_alf(small, recording, out)
    export_to_alf(small, recording, out, overwrite=True)  # replaces it
    # a sorter folder is never replaced by an export
    (tmp_path / "run" / "sorter_output").mkdir(parents=True)
    (tmp_path / "run" / "spikeinterface_log.json").write_text("{}")
    with pytest.raises(OutputFolderError):
        export_to_alf(small, recording, tmp_path / "run", overwrite=True)
    assert (tmp_path / "run" / "spikeinterface_log.json").exists()


def test_alf_empty_sorting(case, tmp_path):
    recording, _ = case
    empty = sic.NumpySorting.from_unit_dict([{}], FS)
    out = export_to_alf(empty, recording, tmp_path / "alf")
    assert np.load(out / "spikes.times.npy").shape == (0,)
    assert np.load(out / "clusters.channels.npy").shape == (0,)


def test_export_needs_a_recording(case, tmp_path):
    _, sorting = case
    bare = sic.NumpySorting.from_sorting(sorting)
    with pytest.raises(RecordingError):
        export_to_alf(bare, None, tmp_path / "alf")


def test_phy_reads_back_with_read_phy(case, analyzer, tmp_path):
    _, sorting = case
    out = export_phy(None, output_folder=tmp_path / "phy", analyzer=analyzer, copy_binary=False)
    back = se.read_phy(out)
    assert len(back.unit_ids) == len(sorting.unit_ids)
    assert sorted(len(back.get_unit_spike_train(u)) for u in back.unit_ids) == sorted(
        len(sorting.get_unit_spike_train(u)) for u in sorting.unit_ids)
