"""Scoring a Sorting against ground truth with SpikeInterface's comparison tools."""

from __future__ import annotations

from pathlib import Path

import numpy as np

WELL_DETECTED = 0.8


def ground_truth_snr(recording, gt_sorting) -> np.ndarray:
    """Peak SNR of every ground-truth unit, from its template (SpikeInterface's quality metric)."""
    import spikeinterface.core as sic
    from spikeinterface.metrics.quality import compute_snrs

    analyzer = sic.create_sorting_analyzer(gt_sorting, recording, sparse=True, format="memory")
    analyzer.compute(["random_spikes", "templates", "noise_levels"], verbose=False, progress_bar=False)
    snrs = compute_snrs(analyzer)
    return np.array([snrs[unit_id] for unit_id in gt_sorting.unit_ids])


def summarise_comparison(comparison) -> dict:
    """The unit counts and mean scores of a ``GroundTruthComparison`` (exhaustive ground truth):
    what every table of this package reports."""
    perf = comparison.get_performance()
    return {
        "mean_accuracy": float(perf["accuracy"].mean()),
        "mean_recall": float(perf["recall"].mean()),
        "mean_precision": float(perf["precision"].mean()),
        "well_detected": int(comparison.count_well_detected_units(WELL_DETECTED)),
        "false_positive_units": int(comparison.count_false_positive_units()),
        "redundant_units": int(comparison.count_redundant_units()),
        "overmerged_units": int(comparison.count_overmerged_units()),
    }


def score_against_ground_truth(gt_sorting, sorting, recording=None, figures_folder: str | Path | None = None) -> dict:
    """Mean accuracy/recall/precision and unit counts (``compare_sorter_to_ground_truth``, exhaustive GT)."""
    from spikeinterface.comparison import compare_sorter_to_ground_truth

    comparison = compare_sorter_to_ground_truth(gt_sorting, sorting, exhaustive_gt=True)
    perf = comparison.get_performance()
    score = {"num_gt_units": int(len(gt_sorting.unit_ids)), "num_units_found": int(len(sorting.unit_ids))}
    score |= summarise_comparison(comparison)
    score["accuracy_per_unit"] = {str(k): float(v) for k, v in perf["accuracy"].items()}
    if figures_folder is not None and recording is not None:
        snr = ground_truth_snr(recording, gt_sorting)
        score["snr_per_unit"] = {str(u): float(s) for u, s in zip(gt_sorting.unit_ids, snr)}
        plot_accuracy_vs_snr({"deepspikesort": perf["accuracy"].to_numpy()}, snr, Path(figures_folder) / "accuracy_vs_snr.png")
        plot_agreement(comparison, Path(figures_folder) / "agreement_matrix.png")
    return score


def plot_accuracy_vs_snr(accuracies: dict, snr: np.ndarray, path: Path) -> None:
    """One curve per sorter: unit accuracy against the unit's SNR, units sorted by SNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(snr)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, accuracy in accuracies.items():
        ax.plot(np.asarray(snr)[order], np.asarray(accuracy)[order], "o-", label=name, alpha=0.8)
    ax.axhline(WELL_DETECTED, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="ground-truth unit SNR", ylabel="accuracy", ylim=(-0.02, 1.02), title="Accuracy per unit")
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_agreement(comparison, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from spikeinterface.widgets import plot_agreement_matrix

    fig, ax = plt.subplots(figsize=(7, 6))
    plot_agreement_matrix(comparison, ax=ax, backend="matplotlib")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
