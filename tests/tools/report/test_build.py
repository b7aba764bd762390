"""make_report: the report a real sort writes (its files, analyzer and tables), and its refusals.

The page is tested in test_page.py, the figures in test_unit_figures.py and test_training_figures.py,
the `deepspikesort report` command in tests/cli/test_report.py.
"""

import pandas as pd
import pytest

from spikeinterface_deepsort.errors import OutputFolderError
from spikeinterface_deepsort.tools.report.build import QUALITY_METRIC_COLUMNS, make_report

UNIT_FIGURES = ["unit_templates.png", "amplitudes.png", "isi_histograms.png", "autocorrelograms.png",
                "unit_locations.png"]
OWN_FIGURES = ["deepcluster_history.png", "embedding.png"]


def test_report_written_by_the_sort(sorter_folder, report_folder):
    import spikeinterface.core as sic

    sorting = sic.load(sorter_folder / "sorter_output" / "sorting")
    assert len(sorting.unit_ids) > 0
    for name in ["index.html", "quality_metrics.csv", "unit_labels.csv", *UNIT_FIGURES, *OWN_FIGURES]:
        assert (report_folder / name).is_file(), name
    # The analyzer is saved with the report and reloads with SpikeInterface.
    analyzer = sic.load_sorting_analyzer(report_folder / "analyzer")
    assert list(analyzer.unit_ids) == list(sorting.unit_ids)
    for extension in ["random_spikes", "waveforms", "templates", "noise_levels", "spike_amplitudes", "unit_locations",
                      "correlograms", "isi_histograms", "quality_metrics"]:
        assert analyzer.has_extension(extension), extension
    # The pipeline logs the report as a stage of its own.
    assert "stage report: done" in (sorter_folder / "sorter_output" / "deepspikesort.log").read_text()


def test_quality_metrics_csv(sorter_folder, report_folder):
    import spikeinterface.core as sic

    metrics = pd.read_csv(report_folder / "quality_metrics.csv", index_col="unit_id")
    for column in QUALITY_METRIC_COLUMNS:
        assert column in metrics.columns, column
    sorting = sic.load(sorter_folder / "sorter_output" / "sorting")
    assert sorted(metrics.index.astype(str)) == sorted(str(u) for u in sorting.unit_ids)
    duration = 12.0
    counts = sorting.count_num_spikes_per_unit()
    for unit_id in sorting.unit_ids:
        row = metrics.loc[type(metrics.index[0])(unit_id)]
        assert row["firing_rate"] == pytest.approx(counts[unit_id] / duration, rel=1e-3)
        assert 0.0 <= row["presence_ratio"] <= 1.0  # defined even on a 12 s recording
        assert row["isi_violations_count"] >= 0
        assert row["num_spikes"] == counts[unit_id]
    assert (metrics["snr"] > 0).all()


def test_report_of_a_folder_without_a_sort_is_refused(tmp_path):
    with pytest.raises(OutputFolderError, match="no finished deepspikesort sort"):
        make_report(tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_report_never_replaces_a_users_folder(tmp_path):
    """--output of `deepspikesort report` may name any folder: one that is not a report of ours is refused whole."""
    from spikeinterface_deepsort.tools.report.build import _clear_report_folder

    mine = tmp_path / "figures"
    mine.mkdir()
    (mine / "amplitudes.png").write_bytes(b"my own figure")
    with pytest.raises(OutputFolderError, match="did not write"):
        _clear_report_folder(mine)
    assert (mine / "amplitudes.png").read_bytes() == b"my own figure"
    _clear_report_folder(tmp_path / "report")
    (tmp_path / "report" / "index.html").write_text("an earlier report")
    _clear_report_folder(tmp_path / "report")  # ours: replaced
    assert [p.name for p in (tmp_path / "report").iterdir()] == ["deepspikesort_folder.json"]
