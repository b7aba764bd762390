"""Scoring a Sorting against ground truth: the counts and means every table of the package reports."""

import json

import numpy as np
import pytest
import spikeinterface.core as sic
from spikeinterface.comparison import compare_sorter_to_ground_truth

from spikeinterface_deepsort.tools.scoring import (WELL_DETECTED, ground_truth_snr, plot_accuracy_vs_snr,
                                                   score_against_ground_truth, summarise_comparison)


@pytest.fixture(scope="module")
def case():
    return sic.generate_ground_truth_recording(durations=[5.0], sampling_frequency=30000.0, num_channels=8,
                                               num_units=4, seed=8)


def test_a_sorting_compared_with_itself_is_perfect(case):
    _, gt = case
    summary = summarise_comparison(compare_sorter_to_ground_truth(gt, gt, exhaustive_gt=True))
    assert summary == {"mean_accuracy": 1.0, "mean_recall": 1.0, "mean_precision": 1.0, "well_detected": 4,
                       "false_positive_units": 0, "redundant_units": 0, "overmerged_units": 0}
    json.dumps(summary)  # plain numbers: written to score.json as they are


def test_a_missed_unit_and_a_noise_unit_are_counted(case):
    recording, gt = case
    units = {u: gt.get_unit_spike_train(u) for u in gt.unit_ids[1:]}  # the first unit missed
    rng = np.random.default_rng(0)
    units["noise"] = np.sort(rng.choice(recording.get_num_samples(), 60, replace=False))  # matches nothing
    tested = sic.NumpySorting.from_unit_dict([units], recording.get_sampling_frequency())
    summary = summarise_comparison(compare_sorter_to_ground_truth(gt, tested, exhaustive_gt=True))
    assert summary["well_detected"] == 3 and summary["false_positive_units"] == 1
    assert summary["mean_accuracy"] == pytest.approx(0.75) and summary["mean_recall"] == pytest.approx(0.75)


def test_score_with_figures(case, tmp_path):
    recording, gt = case
    score = score_against_ground_truth(gt, gt, recording, figures_folder=tmp_path)
    assert score["num_gt_units"] == score["num_units_found"] == 4 and score["well_detected"] == 4
    assert set(score["accuracy_per_unit"]) == {str(u) for u in gt.unit_ids}
    assert all(value == 1.0 for value in score["accuracy_per_unit"].values())
    snr = ground_truth_snr(recording, gt)
    assert snr.shape == (4,) and np.all(snr > 0)
    np.testing.assert_allclose(list(score["snr_per_unit"].values()), snr)
    for name in ("accuracy_vs_snr.png", "agreement_matrix.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "snr_per_unit" not in score_against_ground_truth(gt, gt)  # no figures, no SNR


def test_accuracy_vs_snr_draws_one_curve_per_sorter(tmp_path):
    from PIL import Image

    path = tmp_path / "sub" / "accuracy.png"
    plot_accuracy_vs_snr({"a": np.array([0.9, 0.2, 0.5]), "b": np.array([1.0, 0.1, WELL_DETECTED])},
                         np.array([8.0, 2.0, 5.0]), path)
    with Image.open(path) as image:
        assert image.size == (660, 440)  # 6 x 4 inches at 110 dpi
