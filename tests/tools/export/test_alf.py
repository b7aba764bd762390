"""export_to_alf / export_phy on a generated recording and its ground-truth sorting.

The clients that read these folders (phylib, ONE, bombcell) are in test_export_clients.py.
"""

import json

import numpy as np
import pandas as pd
import pytest
import spikeinterface.core as sic
import spikeinterface.extractors as se

from spikeinterface_deepsort.errors import OutputFolderError, ParameterError, RecordingError
from spikeinterface_deepsort.tools.export import (IBL_METRICS, UNIT_LOCATION_METHOD, bombcell_parameters, build_analyzer,
                                            export_phy, export_to_alf, unit_depths)
from spikeinterface_deepsort.output_folders import MARKER

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
    np.testing.assert_array_equal(np.load(out / "spikes.templates.npy"), clusters)  # one template per cluster
    assert amps.shape == depths.shape == (n_spikes,)

    # amplitudes in volts (positive), as IBL; SpikeInterface's are µV on the main channel
    si_amps = analyzer.get_extension("spike_amplitudes").get_data()
    np.testing.assert_allclose(amps, np.abs(si_amps) * 1e-6, rtol=1e-6)
    assert np.all(amps > 0) and np.all(amps < 1e-3)
    y = recording.get_channel_locations()[:, 1]
    assert np.all((depths >= y.min() - 1) & (depths <= y.max() + 1))

    channels = np.load(out / "clusters.channels.npy")
    cluster_amps = np.load(out / "clusters.amps.npy")
    assert channels.shape == cluster_amps.shape == (n_units,)
    np.testing.assert_array_equal(channels, analyzer.get_main_channels(outputs="index"))
    for i in range(n_units):
        assert cluster_amps[i] == pytest.approx(np.median(amps[clusters == i]))
    np.testing.assert_allclose(np.load(out / "templates.amps.npy"),
                               [amps[clusters == i].mean() for i in range(n_units)])
    assert list(np.load(out / "clusters.unitIds.npy")) == list(sorting.unit_ids)
    waveforms = np.load(out / "clusters.waveforms.npy")
    assert waveforms.shape[0] == n_units and waveforms.shape[2] == 16
    np.testing.assert_array_equal(np.load(out / "clusters.waveformsChannels.npy")[:, 0], channels)
    np.testing.assert_array_equal(np.load(out / "templates.waveforms.npy"), waveforms)
    np.testing.assert_allclose(np.load(out / "channels.localCoordinates.npy"), recording.get_channel_locations())
    np.testing.assert_array_equal(np.load(out / "_kilosort_whitening.matrix.npy"), np.eye(16))
    info = json.loads((out / "deepspikesort_export.json").read_text())
    assert info["amplitude_unit"] == "V" and info["num_spikes"] == n_spikes
    assert json.loads((out / MARKER).read_text())["kind"] == "alf-export"


def test_alf_depths_are_the_shared_unit_depths(case, analyzer, tmp_path):
    """clusters.depths is unit_depths(analyzer), the report's definition (centre of mass of the mean waveform)."""
    recording, sorting = case
    out = export_to_alf(sorting, recording, tmp_path / "alf", analyzer=analyzer)
    cluster_depths = np.load(out / "clusters.depths.npy")
    np.testing.assert_allclose(cluster_depths, unit_depths(analyzer))
    y = recording.get_channel_locations()[:, 1]
    assert np.all((cluster_depths >= y.min()) & (cluster_depths <= y.max()))
    # an analyzer whose unit_locations came from another method is brought to the shared one
    analyzer.compute("unit_locations", method="monopolar_triangulation")
    np.testing.assert_allclose(unit_depths(analyzer), cluster_depths)
    assert analyzer.get_extension("unit_locations").params["method"] == UNIT_LOCATION_METHOD


def test_alf_cluster_metrics_uuids_and_peak_to_trough(case, analyzer, tmp_path):
    from spikeinterface.metrics import compute_isi_violations, compute_sliding_rp_violations

    recording, sorting = case
    out = export_to_alf(sorting, recording, tmp_path / "alf", analyzer=analyzer)
    metrics = pd.read_parquet(out / "clusters.metrics.pqt")
    assert list(metrics.columns) == ["cluster_id", *IBL_METRICS]
    assert list(metrics["cluster_id"]) == list(range(len(sorting.unit_ids)))
    assert list(metrics["spike_count"]) == [len(sorting.get_unit_spike_train(u)) for u in sorting.unit_ids]
    np.testing.assert_allclose(metrics["firing_rate"], metrics["spike_count"] / recording.get_total_duration())
    np.testing.assert_allclose(metrics["amp_median"], np.load(out / "clusters.amps.npy"))
    isi = compute_isi_violations(analyzer, isi_threshold_ms=1.5, min_isi_ms=0.1).isi_violations_ratio
    np.testing.assert_allclose(metrics["contamination"], [isi[u] for u in sorting.unit_ids])
    sliding = compute_sliding_rp_violations(analyzer)
    np.testing.assert_allclose(metrics["min_contamination"], [sliding[u] for u in sorting.unit_ids])
    assert metrics["presence_ratio"].isna().all()  # SpikeInterface: NaN when the recording is shorter than a bin

    uuids = pd.read_csv(out / "clusters.uuids.csv")
    assert list(uuids.columns) == ["uuids"] and uuids["uuids"].nunique() == len(sorting.unit_ids)
    again = export_to_alf(sorting, recording, tmp_path / "again", analyzer=analyzer)
    assert list(pd.read_csv(again / "clusters.uuids.csv")["uuids"]) == list(uuids["uuids"])  # reproducible

    # phylib's definition: argmax - argmin of the template on its largest channel, in ms
    templates = analyzer.get_extension("templates").get_templates(operator="average")
    peak_to_trough = np.load(out / "clusters.peakToTrough.npy")
    for i, template in enumerate(templates):
        trace = template[:, np.argmax(np.ptp(template, axis=0))]
        assert peak_to_trough[i] == pytest.approx((trace.argmax() - trace.argmin()) / FS * 1e3)


def test_alf_reads_back_with_read_alf_sorting(case, analyzer, tmp_path):
    pytest.importorskip("one.alf.io", reason="read_alf_sorting needs the ONE-api package (pip install ONE-api)")
    recording, sorting = case
    out = export_to_alf(sorting, recording, tmp_path / "alf", analyzer=analyzer)
    back = se.read_alf_sorting(out, sampling_frequency=FS)
    assert len(back.unit_ids) == len(sorting.unit_ids)
    for index, unit in enumerate(sorting.unit_ids):
        np.testing.assert_array_equal(back.get_unit_spike_train(index), sorting.get_unit_spike_train(unit))


def test_alf_builds_its_own_analyzer_and_replaces_only_its_own_folders(case, tmp_path):
    recording, sorting = case
    small = sorting.select_units(sorting.unit_ids[:2])
    out = export_to_alf(small, recording, tmp_path / "alf")
    assert np.load(out / "spikes.clusters.npy").max() == 1
    assert np.all(np.load(out / "spikes.amps.npy") > 0)
    with pytest.raises(OutputFolderError, match="already exists"):
        export_to_alf(small, recording, out)
    export_to_alf(small, recording, out, overwrite=True)  # an ALF export of ours: replaced
    with pytest.raises(OutputFolderError, match="alf-export"):
        export_phy(small, recording, out, overwrite=True)  # but never by another kind of export
    # a sorter folder (no marker of ours) is never replaced by an export
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
    assert len(pd.read_parquet(out / "clusters.metrics.pqt")) == 0


def test_export_needs_a_recording(case, tmp_path):
    _, sorting = case
    bare = sic.NumpySorting.from_sorting(sorting)
    with pytest.raises(RecordingError):
        export_to_alf(bare, None, tmp_path / "alf")


@pytest.fixture(scope="module")
def float_phy(analyzer, tmp_path_factory):
    return export_phy(None, output_folder=tmp_path_factory.mktemp("float") / "phy", analyzer=analyzer)


def test_phy_kilosort_files_for_a_float_recording(case, analyzer, float_phy):
    recording, sorting = case
    out = float_phy
    params = (out / "params.py").read_text()
    assert "dat_path = r'recording.dat'" in params and "dtype = 'float32'" in params
    assert np.fromfile(out / "recording.dat", dtype=np.float32).size == 16 * recording.get_num_samples()
    np.testing.assert_array_equal(np.load(out / "whitening_mat_inv.npy"), np.eye(16))
    amplitudes = np.load(out / "amplitudes.npy")
    assert amplitudes.shape == (sorting.to_spike_vector().size,)
    assert np.median(amplitudes) == pytest.approx(1.0, abs=0.2) and np.mean(amplitudes > 0) > 0.99
    np.testing.assert_allclose(np.load(out / "spike_amplitudes_uV.npy"),
                               analyzer.get_extension("spike_amplitudes").get_data())
    assert np.load(out / "templates.npy").shape[::2] == (len(sorting.unit_ids), 16)  # dense, as Kilosort's
    assert not (out / "template_ind.npy").exists()
    back = se.read_phy(out)
    assert sorted(len(back.get_unit_spike_train(u)) for u in back.unit_ids) == sorted(
        len(sorting.get_unit_spike_train(u)) for u in sorting.unit_ids)


def test_bombcell_parameters_refuse_float_raw_data(float_phy):
    pytest.importorskip("bombcell", reason="bombcell is not installed (pip install bombcell)")
    with pytest.raises(RecordingError, match="raw_data=False"):
        bombcell_parameters(float_phy)  # bombcell would read the float32 samples as int16
    param = bombcell_parameters(float_phy, raw_data=False)
    assert param["raw_data_file"] is None and param["nChannels"] == 16 and param["ephys_sample_rate"] == FS


def test_phy_failures_leave_no_folder(case, analyzer, tmp_path):
    recording, sorting = case
    target = tmp_path / "phy"
    with pytest.raises(RecordingError, match="not one flat binary file"):
        export_phy(sorting, recording, target, copy_binary=False)  # a generated recording has no file
    with pytest.raises(Exception):
        export_phy(None, output_folder=target, analyzer=analyzer, template_mode="no-such-mode")  # fails half-way
    assert list(tmp_path.iterdir()) == []
    two = sic.generate_ground_truth_recording(durations=[1.0, 1.0], num_channels=4, num_units=2, seed=1)
    with pytest.raises(RecordingError, match="segments"):
        export_phy(two[1], two[0], target)


def test_phy_principal_components(case, analyzer, tmp_path):
    recording, sorting = case
    small = sorting.select_units(sorting.unit_ids[:2])
    out = export_phy(small, recording, tmp_path / "pc", compute_pc_features=True)
    features = np.load(out / "pc_features.npy")
    assert features.shape[:2] == (small.to_spike_vector().size, 5)  # 5 components per channel, every spike
    assert np.load(out / "pc_feature_ind.npy").shape == (2, features.shape[2])
    # an analyzer of the caller's without waveforms is refused before anything is written
    with pytest.raises(ParameterError, match="waveforms"):
        export_phy(None, output_folder=tmp_path / "refused", analyzer=analyzer, compute_pc_features=True)
    assert not (tmp_path / "refused").exists()
