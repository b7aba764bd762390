"""export_to_alf on a generated recording and its ground-truth sorting (the session's ``export_case``).

The clients that read these folders (ONE, phylib's alf2phy) are in tests/test_export_clients.py.
"""

import json

import numpy as np
import pandas as pd
import pytest
import spikeinterface.core as sic
import spikeinterface.extractors as se

from spikeinterface_deepsort.errors import OutputFolderError
from spikeinterface_deepsort.output_folders import MARKER
from spikeinterface_deepsort.tools.export import IBL_METRICS, export_phy, export_to_alf, unit_depths

FS = 30000.0


def test_alf_files_and_units(export_case, export_analyzer, tmp_path):
    recording, sorting = export_case
    out = export_to_alf(sorting, recording, tmp_path / "alf", analyzer=export_analyzer)
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
    si_amps = export_analyzer.get_extension("spike_amplitudes").get_data()
    np.testing.assert_allclose(amps, np.abs(si_amps) * 1e-6, rtol=1e-6)
    assert np.all(amps > 0) and np.all(amps < 1e-3)
    y = recording.get_channel_locations()[:, 1]
    assert np.all((depths >= y.min() - 1) & (depths <= y.max() + 1))

    channels = np.load(out / "clusters.channels.npy")
    cluster_amps = np.load(out / "clusters.amps.npy")
    assert channels.shape == cluster_amps.shape == (n_units,)
    np.testing.assert_array_equal(channels, export_analyzer.get_main_channels(outputs="index"))
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


def test_alf_depths_are_the_shared_unit_depths(export_case, export_analyzer, tmp_path):
    """clusters.depths is unit_depths(analyzer), the report's definition (centre of mass of the mean waveform)."""
    recording, sorting = export_case
    out = export_to_alf(sorting, recording, tmp_path / "alf", analyzer=export_analyzer)
    cluster_depths = np.load(out / "clusters.depths.npy")
    np.testing.assert_allclose(cluster_depths, unit_depths(export_analyzer))
    y = recording.get_channel_locations()[:, 1]
    assert np.all((cluster_depths >= y.min()) & (cluster_depths <= y.max()))


def test_alf_cluster_metrics_uuids_and_peak_to_trough(export_case, export_analyzer, tmp_path):
    from spikeinterface.metrics import compute_isi_violations, compute_sliding_rp_violations

    recording, sorting = export_case
    out = export_to_alf(sorting, recording, tmp_path / "alf", analyzer=export_analyzer)
    metrics = pd.read_parquet(out / "clusters.metrics.pqt")
    assert list(metrics.columns) == ["cluster_id", *IBL_METRICS]
    assert list(metrics["cluster_id"]) == list(range(len(sorting.unit_ids)))
    assert list(metrics["spike_count"]) == [len(sorting.get_unit_spike_train(u)) for u in sorting.unit_ids]
    np.testing.assert_allclose(metrics["firing_rate"], metrics["spike_count"] / recording.get_total_duration())
    np.testing.assert_allclose(metrics["amp_median"], np.load(out / "clusters.amps.npy"))
    isi = compute_isi_violations(export_analyzer, isi_threshold_ms=1.5, min_isi_ms=0.1).isi_violations_ratio
    np.testing.assert_allclose(metrics["contamination"], [isi[u] for u in sorting.unit_ids])
    sliding = compute_sliding_rp_violations(export_analyzer)
    np.testing.assert_allclose(metrics["min_contamination"], [sliding[u] for u in sorting.unit_ids])
    assert metrics["presence_ratio"].isna().all()  # SpikeInterface: NaN when the recording is shorter than a bin

    uuids = pd.read_csv(out / "clusters.uuids.csv")
    assert list(uuids.columns) == ["uuids"] and uuids["uuids"].nunique() == len(sorting.unit_ids)
    again = export_to_alf(sorting, recording, tmp_path / "again", analyzer=export_analyzer)
    assert list(pd.read_csv(again / "clusters.uuids.csv")["uuids"]) == list(uuids["uuids"])  # reproducible

    # phylib's definition: argmax - argmin of the template on its largest channel, in ms
    templates = export_analyzer.get_extension("templates").get_templates(operator="average")
    peak_to_trough = np.load(out / "clusters.peakToTrough.npy")
    for i, template in enumerate(templates):
        trace = template[:, np.argmax(np.ptp(template, axis=0))]
        assert peak_to_trough[i] == pytest.approx((trace.argmax() - trace.argmin()) / FS * 1e3)


def test_alf_reads_back_with_read_alf_sorting(export_case, export_analyzer, tmp_path):
    pytest.importorskip("one.alf.io", reason="read_alf_sorting needs the ONE-api package (pip install ONE-api)")
    recording, sorting = export_case
    out = export_to_alf(sorting, recording, tmp_path / "alf", analyzer=export_analyzer)
    back = se.read_alf_sorting(out, sampling_frequency=FS)
    assert len(back.unit_ids) == len(sorting.unit_ids)
    for index, unit in enumerate(sorting.unit_ids):
        np.testing.assert_array_equal(back.get_unit_spike_train(index), sorting.get_unit_spike_train(unit))


def test_alf_builds_its_own_analyzer_and_replaces_only_its_own_folders(export_case, tmp_path):
    recording, sorting = export_case
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


def test_alf_empty_sorting(export_case, tmp_path):
    recording, _ = export_case
    empty = sic.NumpySorting.from_unit_dict([{}], FS)
    out = export_to_alf(empty, recording, tmp_path / "alf")
    assert np.load(out / "spikes.times.npy").shape == (0,)
    assert np.load(out / "clusters.channels.npy").shape == (0,)
    assert len(pd.read_parquet(out / "clusters.metrics.pqt")) == 0
