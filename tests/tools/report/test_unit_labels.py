"""Unit labels (bombcell's, or thresholds on SpikeInterface's quality metrics) and the reasons for missing
metrics, on a real SortingAnalyzer of SpikeInterface's generated ground truth (8 channels, 12 s)."""

import contextlib
import importlib.util
import io

import numpy as np
import pytest
import spikeinterface.core as sic

from spikeinterface_deepsort.tools.report.build import build_report_analyzer
from spikeinterface_deepsort.tools.report.unit_labels import (
    FALLBACK_THRESHOLDS,
    describe_limits,
    label_units,
    missing_reason,
    threshold_labels,
)

LABELS = {"good", "mua", "noise", "non_soma"}
HAS_BOMBCELL = importlib.util.find_spec("bombcell") is not None


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory):
    """The report's own analyzer (build_report_analyzer) on ground truth whose units differ in size."""
    recording, sorting = sic.generate_ground_truth_recording(durations=[12.0], sampling_frequency=30000.0,
                                                             num_channels=8, num_units=5, seed=4)
    folder = tmp_path_factory.mktemp("labels") / "analyzer"
    return build_report_analyzer(sorting, recording, folder, {"seed": 0}, dict(n_jobs=1, progress_bar=False))


def _consistent(result) -> None:
    """Each label is explained by the tests it lists: none for good, at least one for the others."""
    assert set(result.labels) == set(result.metrics.index)
    for unit_id, label in result.labels.items():
        assert label in LABELS
        failures = result.failures(unit_id)
        assert (not failures) if label == "good" else failures, (unit_id, label, failures)


def test_threshold_labels_follow_the_thresholds(analyzer):
    result = threshold_labels(analyzer)
    _consistent(result)
    assert result.thresholds == FALLBACK_THRESHOLDS and "SpikeInterface" in result.source
    # Raise one MUA threshold above every unit: the units that were good become MUA, for that reason.
    strict = {"noise": FALLBACK_THRESHOLDS["noise"], "mua": {"firing_rate": {"greater": 1e6, "less": None}}}
    strict_result = threshold_labels(analyzer, strict)
    for unit_id, label in result.labels.items():
        if label != "noise":
            assert strict_result.labels[unit_id] == "mua"
            rate = analyzer.get_extension("quality_metrics").get_data().loc[unit_id, "firing_rate"]
            assert strict_result.failures(unit_id) == [f"firing_rate {rate:.3g} < 1e+06"]
    # And a noise threshold above every unit's SNR makes every unit noise.
    noisy = threshold_labels(analyzer, {"noise": {"snr": {"greater": 1e6, "less": None}}})
    assert set(noisy.labels.values()) == {"noise"}


def test_a_threshold_on_a_metric_not_computed_is_reported(analyzer):
    result = threshold_labels(analyzer, {"mua": {"isolation_distance": {"greater": 20, "less": None},
                                                 "snr": {"greater": 0.0, "less": None}}})
    assert result.not_computed == ["isolation_distance"]
    assert "isolation_distance" not in result.thresholds["mua"]


def test_undefined_metrics_are_untested_and_explained(analyzer):
    """12 s of 5 units: under 500 spikes each, so SpikeInterface leaves amplitude_cutoff undefined."""
    result = threshold_labels(analyzer)
    counts = analyzer.sorting.count_num_spikes_per_unit()
    for unit_id in analyzer.unit_ids:
        value = result.metrics.loc[unit_id, "amplitude_cutoff"]
        assert np.isnan(value) == (counts[unit_id] < 500)
        if np.isnan(value):
            assert "amplitude_cutoff" in result.untested(unit_id)
            reason = missing_reason(analyzer, "amplitude_cutoff", unit_id)
            assert reason.startswith("fewer than 500 spikes") and "100-bin" in reason


def test_reasons_for_presence_ratio_and_drift(analyzer, tmp_path):
    """SpikeInterface's defaults on a 12 s recording: one 60 s presence bin, no two drift intervals."""
    copy = analyzer.save_as(format="memory")
    copy.compute("spike_locations")
    copy.compute("quality_metrics", metric_names=["presence_ratio", "drift"],
                 metric_params={"presence_ratio": {"bin_duration_s": 60.0}})
    metrics = copy.get_extension("quality_metrics").get_data()
    unit_id = copy.unit_ids[0]
    assert np.isnan(metrics.loc[unit_id, "presence_ratio"]) and np.isnan(metrics.loc[unit_id, "drift_ptp"])
    assert missing_reason(copy, "presence_ratio", unit_id) == \
        "the recording (12 s) is shorter than one 60 s presence-ratio bin"
    assert missing_reason(copy, "drift_ptp", unit_id) == \
        "the recording (12 s) holds fewer than 2 drift intervals of 60 s"
    assert missing_reason(copy, "some_metric", unit_id) == "SpikeInterface returned no value for some_metric on this unit"


def test_describe_limits():
    assert describe_limits({"greater": 5, "less": None}) == "≥ 5"
    assert describe_limits({"greater": None, "less": 0.2}) == "≤ 0.2"
    assert describe_limits({"greater": 0.0001, "less": 0.00115}) == "0.0001 to 0.00115"
    assert describe_limits({"greater": 30, "less": None, "abs": True}) == "|x| ≥ 30"


@pytest.mark.skipif(not HAS_BOMBCELL, reason="bombcell is not installed (pip install 'spikeinterface-deepsort[labels]')")
def test_bombcell_labels_are_bombcells_own(analyzer, tmp_path):
    import bombcell

    copy = analyzer.save_as(format="memory")
    result = label_units(copy, tmp_path / "bombcell")
    assert result.source.startswith("bombcell")
    _consistent(result)
    assert "exp_decay" in result.thresholds["noise"] and "num_spikes" in result.thresholds["mua"]
    assert (tmp_path / "bombcell" / "labeling_results_wide.csv").exists()
    # The same call on a fresh copy of the analyzer, straight to bombcell, gives the same labels.
    fresh = analyzer.save_as(format="memory")
    fresh.compute("template_metrics", include_multi_channel_metrics=True)
    bin_s = fresh.get_extension("quality_metrics").params["metric_params"]["presence_ratio"]["bin_duration_s"]
    with contextlib.redirect_stdout(io.StringIO()):
        labels, _, _ = bombcell.run_bombcell_qc(fresh, output_folder=None, n_jobs=1, progress_bar=False,
                                                params={"presence_ratio_bin_duration_s": bin_s, "plot_histograms": False,
                                                        "plot_waveforms": False, "plot_upset": False})
    assert result.labels == dict(labels["bombcell_label"].items())
    # The undefined metrics bombcell meets on a short 8-channel recording each have a reason of their own.
    explained = ("amplitude_cutoff", "drift_ptp", "exp_decay", "peak_before_width", "sliding_rp_violation")
    for unit_id in result.labels:
        for metric in explained:
            if np.isnan(result.metrics.loc[unit_id, metric]):
                assert not missing_reason(copy, metric, unit_id).startswith("SpikeInterface returned"), metric


@pytest.mark.skipif(HAS_BOMBCELL, reason="bombcell is installed: its labels are tested instead")
def test_without_bombcell_the_thresholds_label(analyzer):
    result = label_units(analyzer)
    assert result.thresholds == FALLBACK_THRESHOLDS
    _consistent(result)



@pytest.mark.skipif(not HAS_BOMBCELL, reason="bombcell is not installed (pip install 'spikeinterface-deepsort[labels]')")
def test_thresholds_label_when_bombcell_cannot(analyzer, tmp_path):
    """Reopened without its recording (moved raw data), the analyzer cannot give bombcell the amplitude
    scalings it computes: the thresholds label the units, and the source says why."""
    analyzer.save_as(format="binary_folder", folder=tmp_path / "analyzer")
    for name in ("recording.json", "recording.pickle"):
        (tmp_path / "analyzer" / name).unlink(missing_ok=True)
    reopened = sic.load_sorting_analyzer(tmp_path / "analyzer")
    assert not reopened.has_recording()
    result = label_units(reopened)
    assert result.source.startswith("thresholds on SpikeInterface's quality metrics (bombcell failed: ")
    assert result.labels == threshold_labels(analyzer).labels
