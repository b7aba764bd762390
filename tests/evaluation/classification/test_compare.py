"""Comparing sortings, and phase 1 end to end on a real Phy export and an ALF folder."""

import json

import numpy as np
import pandas as pd
import pytest
from spikeinterface.core import NumpySorting, create_sorting_analyzer
from spikeinterface.exporters import export_to_phy

from spikeinterface_deepsort.cli.main import main
from spikeinterface_deepsort.errors import DataFormatError, OutputFolderError
from spikeinterface_deepsort.evaluation.classification.compare import compare_sortings
from spikeinterface_deepsort.tools.datasets import ground_truth_recording

FS = 30000.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A saved 20 s recording, its true sorting as a Phy (Kilosort) folder and as an IBL ALF folder."""
    root = tmp_path_factory.mktemp("references")
    recording, sorting = ground_truth_recording(32, 10, 20.0, seed=2, firing_rates=(5.0, 40.0))
    recording = recording.save(folder=root / "recording", progress_bar=False)
    analyzer = create_sorting_analyzer(sorting, recording, format="memory", sparse=True)
    analyzer.compute(["random_spikes", "templates"])
    export_to_phy(analyzer, root / "phy", compute_pc_features=False, compute_amplitudes=False, copy_binary=False,
                  add_quality_metrics=False, add_template_metrics=False, verbose=False)
    alf = root / "alf"
    alf.mkdir()
    spikes = sorting.to_spike_vector()
    np.save(alf / "spikes.times.npy", spikes["sample_index"] / FS)  # ALF times are in seconds
    np.save(alf / "spikes.clusters.npy", spikes["unit_index"])
    return {"root": root, "recording": root / "recording", "phy": root / "phy", "alf": alf, "sorting": sorting}


@pytest.mark.parametrize("reference", ["phy", "alf"])
def test_classify_and_compare_run_on_phy_and_alf_folders(exported, reference):
    output = exported["root"] / f"out_{reference}"
    code = main(["-q", "classify", "--recording", str(exported["recording"]), "--reference", str(exported[reference]),
                 "--min-spikes", "300", "--max-spikes", "max", "--units", "2", "--spikes-per-unit", "120",
                 "--noise", "60", "--epochs", "2", "--device", "cpu", "--output", str(output)])
    assert code == 0
    for name in ["training_log.csv", "training_curves.png", "confusion_matrix.png", "confusion_matrix.csv",
                 "metrics.json", "comparison.csv"]:
        assert (output / "SUP_000" / name).is_file(), name

    other = "alf" if reference == "phy" else "phy"
    code = main(["-q", "compare", str(exported[other]), str(exported[reference]), "--recording",
                 str(exported["recording"]), "--ground-truth", "--output", str(output / "compare")])
    assert code == 0
    summary = json.loads((output / "compare" / "summary.json").read_text())
    assert summary["num_matched"] == summary["num_reference_units"] == 10  # the same spikes in two formats
    assert summary["num_well_detected"] == 10 and summary["mean_accuracy"] == pytest.approx(1.0)
    for name in ["agreement.csv", "agreement_matrix.csv", "agreement_matrix.png", "performance.csv"]:
        assert (output / "compare" / name).is_file(), name


def degraded(sorting, seed=0):
    """The sorting with units 0 and 1 merged, unit 2 missing, 10% of unit 3 dropped and a spurious unit."""
    rng = np.random.default_rng(seed)
    spikes = sorting.to_spike_vector()
    ids = np.asarray(sorting.unit_ids)[spikes["unit_index"]].astype("U8")
    keep = ids != "2"
    keep &= ~((ids == "3") & (rng.random(len(ids)) < 0.1))
    ids[ids == "1"] = "0"
    samples, labels = spikes["sample_index"][keep], ids[keep]
    spurious = np.sort(rng.choice(20 * 30000, size=400, replace=False))
    return NumpySorting.from_samples_and_labels([np.r_[samples, spurious]], [np.r_[labels, ["x"] * 400]], FS)


def test_agreement_table_matches_and_unmatched_units(tmp_path, exported):
    truth = exported["sorting"]
    result = compare_sortings(degraded(truth), truth, tmp_path / "cmp", ground_truth=True)
    table = pd.read_csv(result.paths["agreement"], index_col=0, dtype={"matched_unit": str, "best_unit": str})
    assert table.loc[5, "matched_unit"] == "5" and table.loc[5, "agreement"] == pytest.approx(1.0)
    assert table.loc[3, "agreement"] == pytest.approx(0.9, abs=0.04)
    # Unit 1 has about twice unit 0's spikes, so the merged unit matches 1; 0 and 2 stay unmatched.
    assert table.loc[1, "matched_unit"] == "0" and pd.isna(table.loc[0, "matched_unit"])
    assert result.summary["unmatched_reference_units"] == ["0", "2"]
    assert result.summary["unmatched_sorting_units"] == ["x"]
    assert result.summary["num_matched"] == 8
    performance = pd.read_csv(result.paths["performance"], index_col=0)
    assert performance.loc[3, "recall"] == pytest.approx(0.9, abs=0.04)
    assert performance.loc[3, "precision"] == pytest.approx(1.0)
    assert result.summary["num_well_detected"] == 7  # 3 to 9
    assert result.paths["agreement_plot"].stat().st_size > 0


def test_without_ground_truth_no_performance_is_claimed(tmp_path, exported):
    truth = exported["sorting"]
    result = compare_sortings(degraded(truth), truth, tmp_path / "cmp")
    assert result.performance is None and not (tmp_path / "cmp" / "performance.csv").exists()
    assert "num_well_detected" not in result.summary


def test_non_empty_output_is_refused_unless_overwritten(tmp_path, exported):
    truth = exported["sorting"]
    compare_sortings(truth, truth, tmp_path / "cmp")
    with pytest.raises(OutputFolderError, match="already exists.*--overwrite"):
        compare_sortings(truth, truth, tmp_path / "cmp")
    compare_sortings(truth, truth, tmp_path / "cmp", overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "summary.json").write_text("my own")
    with pytest.raises(OutputFolderError, match="did not write"):
        compare_sortings(truth, truth, tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "summary.json").read_text() == "my own"


def test_sortings_at_different_rates_are_refused(tmp_path, exported):
    truth = exported["sorting"]
    other = NumpySorting.from_samples_and_labels([np.array([10, 20])], [np.array([0, 1])], 25000.0)
    with pytest.raises(DataFormatError, match="cannot come from the same recording"):
        compare_sortings(other, truth, tmp_path / "cmp")
