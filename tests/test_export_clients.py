"""The exports read by the tools their users open next: phylib (Phy's loader), bombcell, ONE, alf2phy.

The recording is SpikeInterface's generated ground truth saved as int16 at 0.25 µV per bit,
as an acquisition system writes it, 60 s long so that bombcell's thresholds (300 spikes)
apply. Each client's answer is checked against the Sorting: counts, spike times, cluster ids.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import spikeinterface.core as sic
import spikeinterface.preprocessing as spre

from spikeinterface_deepsort.tools.export import bombcell_parameters, build_analyzer, export_phy, export_to_alf

FS = 30000.0
GAIN_UV = 0.25


@pytest.fixture(scope="module")
def int16_case(tmp_path_factory):
    base = tmp_path_factory.mktemp("clients")
    recording, sorting = sic.generate_ground_truth_recording(durations=[60.0], sampling_frequency=FS, num_channels=16,
                                                            num_units=6, seed=7)
    counts = spre.scale(recording, gain=1 / GAIN_UV, dtype="int16")
    counts.set_channel_gains(GAIN_UV)
    counts.set_channel_offsets(0.0)
    saved = counts.save(folder=base / "recording", progress_bar=False)
    return base, saved, sorting.save(folder=base / "sorting")


@pytest.fixture(scope="module")
def analyzer(int16_case):
    _, recording, sorting = int16_case
    analyzer = build_analyzer(sorting, recording)
    analyzer.compute("template_metrics", include_multi_channel_metrics=True)  # what bombcell's labels read
    return analyzer


@pytest.fixture(scope="module")
def phy_folder(int16_case, analyzer):
    base, recording, _ = int16_case
    return export_phy(None, recording, base / "phy", analyzer=analyzer)


@pytest.fixture(scope="module")
def alf_folder(int16_case, analyzer):
    base, recording, sorting = int16_case
    return export_to_alf(sorting, recording, base / "alf", analyzer=analyzer)


def check_spikes(samples, clusters, sorting):
    """Spike samples per cluster index equal the sorting's trains, unit by unit, in order."""
    assert len(samples) == sorting.to_spike_vector().size
    for index, unit in enumerate(sorting.unit_ids):
        np.testing.assert_array_equal(np.asarray(samples)[np.asarray(clusters) == index],
                                      sorting.get_unit_spike_train(unit))


def test_phylib_loads_the_phy_export(phy_folder, int16_case, analyzer):
    model_module = pytest.importorskip("phylib.io.model", reason="phylib is not installed (pip install phylib)")
    _, recording, sorting = int16_case
    model = model_module.load_model(phy_folder / "params.py")
    assert model.n_spikes == sorting.to_spike_vector().size and model.n_templates == len(sorting.unit_ids)
    check_spikes(model.spike_samples, model.spike_clusters, sorting)
    np.testing.assert_allclose(model.spike_times, model.spike_samples / FS)
    np.testing.assert_allclose(model.channel_positions, recording.get_channel_locations())
    np.testing.assert_array_equal(model.wmi, np.eye(16))

    # recording.dat: int16 counts of the filtered traces, with the recording's gain
    assert model.dtype == np.int16 and model.n_channels_dat == 16
    filtered_uv = analyzer.recording.get_traces(start_frame=0, end_frame=3000, return_in_uV=True)
    np.testing.assert_allclose(np.asarray(model.traces[:3000]) * GAIN_UV, filtered_uv, atol=GAIN_UV / 2 + 1e-3)

    # Kilosort's amplitudes: positive template scalings. phylib's true amplitude is the scaling times the
    # template's peak-to-peak in the data's units, so x gain: the µV peak-to-peak of the unit's template
    assert np.mean(model.amplitudes > 0) > 0.99 and 0.8 < np.median(model.amplitudes) < 1.2
    _, _, template_amps = model.get_amplitudes_true()
    templates_uv = analyzer.get_extension("templates").get_templates(operator="average")
    ptp_uv = np.ptp(templates_uv, axis=1).max(axis=1)
    mean_scaling = [model.amplitudes[model.spike_templates == t].mean() for t in range(model.n_templates)]
    np.testing.assert_allclose(template_amps * GAIN_UV, ptp_uv * mean_scaling, rtol=1e-4)
    uv = np.load(phy_folder / "spike_amplitudes_uV.npy")
    np.testing.assert_allclose(uv, analyzer.get_extension("spike_amplitudes").get_data())
    assert model.spike_attributes["amplitudes_uV"].shape == (model.n_spikes,)  # Phy shows it as a spike attribute


def test_bombcell_labels_the_phy_export_as_it_labels_the_analyzer(phy_folder, analyzer, tmp_path):
    bombcell = pytest.importorskip("bombcell", reason="bombcell is not installed (pip install bombcell)")
    from bombcell.spikeinterface_pipeline import get_default_qc_params, run_bombcell_qc

    # bombcell's defaults; the export tells it the data's layout and gain, and one job keeps the test light
    param = bombcell_parameters(phy_folder, verbose=False, plotGlobal=False, joblib_n_jobs=1)
    assert param["nChannels"] == 16 and param["gain_to_uV"] == GAIN_UV and param["raw_data_file"].endswith(".dat")
    _, _, _, from_folder = bombcell.run_bombcell(str(phy_folder), str(tmp_path / "bombcell"), param)
    qc = get_default_qc_params() | dict(plot_histograms=False, plot_waveforms=False, plot_upset=False)
    labels, _, _ = run_bombcell_qc(analyzer, output_folder=None, params=qc, n_jobs=1, progress_bar=False)
    from_analyzer = list(labels["bombcell_label"])
    assert [str(label).lower() for label in from_folder] == from_analyzer
    assert {"good", "mua"} <= set(from_analyzer)  # the comparison is not trivial: both labels occur


def test_one_loads_the_alf_objects(alf_folder, int16_case):
    alfio = pytest.importorskip("one.alf.io", reason="ONE-api is not installed (pip install ONE-api)")
    _, recording, sorting = int16_case
    n_units = len(sorting.unit_ids)
    spikes = alfio.load_object(alf_folder, "spikes")
    assert {"times", "samples", "clusters", "templates", "amps", "depths"} <= set(spikes)
    check_spikes(spikes["samples"], spikes["clusters"], sorting)
    np.testing.assert_array_equal(spikes["templates"], spikes["clusters"])
    clusters = alfio.load_object(alf_folder, "clusters")
    assert {"channels", "depths", "amps", "metrics", "uuids", "peakToTrough", "waveforms",
            "waveformsChannels"} <= set(clusters)
    assert len(clusters["uuids"]) == n_units and len(clusters["metrics"]) == n_units
    assert list(clusters["metrics"]["spike_count"]) == [len(sorting.get_unit_spike_train(u)) for u in sorting.unit_ids]
    assert clusters["metrics"]["presence_ratio"].between(0, 1).all()
    templates = alfio.load_object(alf_folder, "templates")
    assert templates["waveforms"].shape[0] == n_units and templates["waveformsChannels"].shape[0] == n_units
    assert templates["amps"].shape == (n_units,) and np.all((templates["amps"] > 0) & (templates["amps"] < 1e-3))
    channels = alfio.load_object(alf_folder, "channels")
    np.testing.assert_allclose(channels["localCoordinates"], recording.get_channel_locations())


def test_phylib_alf2phy_converts_the_alf_export(alf_folder, int16_case, tmp_path):
    alf = pytest.importorskip("phylib.io.alf", reason="phylib is not installed (pip install phylib)")
    from phylib.io.model import load_model

    _, recording, sorting = int16_case
    target = alf.alf2phy(alf_folder, tmp_path / "phy_from_alf")
    model = load_model(target / "params.py")
    assert model.n_templates == len(sorting.unit_ids)
    check_spikes(model.spike_samples, model.spike_clusters, sorting)
    assert np.mean(model.amplitudes > 0) > 0.99
    # params.py names the sorted recording's own file, so that Phy shows the raw traces
    assert [Path(p) for p in model.dat_path] == [Path(recording._bin_kwargs["file_paths"][0]).resolve()]
    np.testing.assert_array_equal(np.asarray(model.traces[:500]), recording.get_traces(start_frame=0, end_frame=500))


def test_phy_export_without_binary_for_bombcell_reads_the_original_file(int16_case, analyzer, tmp_path):
    pytest.importorskip("phylib.io.model", reason="phylib is not installed (pip install phylib)")
    from phylib.io.model import load_model

    _, recording, sorting = int16_case
    out = export_phy(None, recording, tmp_path / "phy", analyzer=analyzer, copy_binary=False)
    model = load_model(out / "params.py")
    assert [Path(p) for p in model.dat_path] == [Path(recording._bin_kwargs["file_paths"][0]).resolve()]
    np.testing.assert_array_equal(np.asarray(model.traces[:500]), recording.get_traces(start_frame=0, end_frame=500))
    assert f"hp_filtered = {recording.is_filtered()}" in (out / "params.py").read_text()  # the file's own state
    check_spikes(model.spike_samples, model.spike_clusters, sorting)
    # string unit ids (the generator's) are kept under si_unit_name, which read_phy reads back
    assert pd.read_csv(out / "cluster_si_unit_ids.tsv", sep="\t")["si_unit_name"].astype(str).tolist() == \
        [str(u) for u in sorting.unit_ids]


def run_phy(*args):
    """phy's own command line, headless (Qt's offscreen platform), in a process of its own."""
    pytest.importorskip("phy", reason="phy is not installed (pip install phy)")
    command = [sys.executable, "-c", "import sys; from phy.apps import phycli; sys.exit(phycli())", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env=os.environ | {"QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def test_phy_describes_and_converts_the_phy_export(phy_folder, int16_case, tmp_path):
    alfio = pytest.importorskip("one.alf.io", reason="ONE-api is not installed (pip install ONE-api)")
    _, _, sorting = int16_case
    described = run_phy("template-describe", phy_folder / "params.py")
    assert re.search(r"# of templates\s+6\b", described) and re.search(r"Data type\s+int16", described)
    assert re.search(r"# of spikes\s+" + f"{sorting.to_spike_vector().size:,}", described)
    # phy's own ALF conversion needs dense templates and the whitening matrices
    run_phy("alf-convert", phy_folder, tmp_path / "alf")
    spikes = alfio.load_object(tmp_path / "alf", "spikes")
    check_spikes(spikes["samples"], spikes["clusters"], sorting)


def test_phy_export_without_binary_of_a_spikeglx_recording(tmp_path):
    """--no-binary on SpikeGLX: params.py names the .ap.bin itself (33 saved channels: 32 + sync)."""
    from phylib.io.model import load_model
    from spikeinterface.extractors import read_spikeglx
    from test_ibl_end_to_end import UV_PER_BIT, neuropixels1_probe, write_spikeglx

    generated, sorting = sic.generate_ground_truth_recording(durations=[4.0], sampling_frequency=FS, num_units=4,
                                                             probe=neuropixels1_probe(32), seed=3)
    sorting = sic.NumpySorting.from_sorting(sorting)  # without the generator's channel ids ("main_channel_id")
    run_folder = write_spikeglx(tmp_path, generated.get_traces())
    recording = read_spikeglx(run_folder, stream_id="imec0.ap")
    out = export_phy(sorting, recording, tmp_path / "phy", copy_binary=False)
    model = load_model(out / "params.py")
    assert [Path(p).name for p in model.dat_path] == ["ibltest_g0_t0.imec0.ap.bin"]
    assert model.n_channels_dat == 33 and model.dtype == np.int16
    np.testing.assert_array_equal(np.asarray(model.traces[:1000]), recording.get_traces(start_frame=0, end_frame=1000))
    check_spikes(model.spike_samples, model.spike_clusters, sorting)
    if importlib.util.find_spec("bombcell") is not None:
        param = bombcell_parameters(out)
        assert (param["nChannels"], param["nSyncChannels"]) == (33, 1)
        assert param["gain_to_uV"] == pytest.approx(UV_PER_BIT)
