"""Agreement between two sortings, for instance a deepspikesort output and Kilosort's.

SpikeInterface's ``compare_two_sorters`` gives the agreement score of every pair of
units (matched spikes / union of spikes, within 0.4 ms) and a one-to-one (Hungarian)
matching; when the reference is ground truth, ``compare_sorter_to_ground_truth`` adds
accuracy, recall and precision per reference unit and the well-detected, false
positive, redundant and over-merged counts.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from spikeinterface.comparison import compare_sorter_to_ground_truth, compare_two_sorters

from ...errors import DataFormatError
from ...output_folders import check_writable_output, mark_folder, remove_own_folder
from ...tools.scoring import summarise_comparison
from .figures import plot_agreement_matrix
from .references import as_sorting, check_reference_matches_recording, detect_reference_format

logger = logging.getLogger(__name__)


@dataclass
class CompareResult:
    """The comparison's tables and summary, and where they were written."""

    output: Path
    agreement: pd.DataFrame  # one row per reference unit
    summary: dict
    performance: pd.DataFrame | None = None  # only when the reference is ground truth
    paths: dict[str, Path] = field(default_factory=dict)


def _load_pair(sorting, reference, recording):
    """Both sortings; ALF times (seconds) are put on the recording's or the other sorting's clock."""
    sources = [sorting, reference]
    fs = recording.get_sampling_frequency() if recording is not None else None
    is_alf = [not hasattr(s, "get_sampling_frequency") and detect_reference_format(s) == "alf" for s in sources]
    loaded = [None, None]
    for index in np.argsort(is_alf, kind="stable"):  # the non-ALF ones first: they carry a sampling frequency
        loaded[index] = as_sorting(sources[index], fs)
        fs = fs or loaded[index].get_sampling_frequency()
    return loaded


def compare_sortings(sorting, reference, output: str | Path, *, recording=None, ground_truth: bool = False,
                     sorting_name: str = "sorting", reference_name: str = "reference",
                     delta_time_ms: float = 0.4, overwrite: bool = False) -> CompareResult:
    """Compare ``sorting`` with ``reference`` (Sortings or paths) and write the tables and plot to ``output``."""
    output = Path(output)
    check_writable_output(output, overwrite=overwrite, kind="comparison", option="--overwrite")
    sorting, reference = _load_pair(sorting, reference, recording)
    if not np.isclose(sorting.get_sampling_frequency(), reference.get_sampling_frequency(), rtol=1e-6):
        raise DataFormatError(
            f"The sorting is sampled at {sorting.get_sampling_frequency()} Hz and the reference at "
            f"{reference.get_sampling_frequency()} Hz: they cannot come from the same recording. Compare sortings "
            "of the same recording (or fix the sample_rate in a Phy folder's params.py)."
        )
    if recording is not None:
        check_reference_matches_recording(recording, reference)
        check_reference_matches_recording(recording, sorting)
    remove_own_folder(output, kind="comparison")  # checked above: absent, empty, or ours and overwrite
    output.mkdir(parents=True)
    mark_folder(output, "comparison")

    comparison = compare_two_sorters(reference, sorting, reference_name, sorting_name, delta_time=delta_time_ms)
    scores = comparison.agreement_scores
    agreement = _agreement_table(comparison, reference, sorting)
    matched = agreement.dropna(subset=["matched_unit"])
    unmatched_sorting = [str(u) for u in sorting.unit_ids if str(u) not in set(matched["matched_unit"])]
    summary = {
        "reference_name": reference_name, "sorting_name": sorting_name,
        "num_reference_units": int(len(reference.unit_ids)), "num_sorting_units": int(len(sorting.unit_ids)),
        "num_matched": int(len(matched)),
        "matched_units": dict(zip(matched.index, matched["matched_unit"])),
        "unmatched_reference_units": [str(u) for u in agreement.index if u not in matched.index],
        "unmatched_sorting_units": unmatched_sorting,
        "mean_matched_agreement": float(matched["agreement"].mean()) if len(matched) else 0.0,
        "delta_time_ms": delta_time_ms,
    }
    paths = {"agreement": output / "agreement.csv", "agreement_matrix": output / "agreement_matrix.csv",
             "agreement_plot": output / "agreement_matrix.png", "summary": output / "summary.json"}
    agreement.to_csv(paths["agreement"])
    scores.rename(index=str, columns=str).to_csv(paths["agreement_matrix"])
    plot_agreement_matrix(scores.rename(index=str, columns=str), paths["agreement_plot"], reference_name, sorting_name)

    performance = None
    if ground_truth:
        performance, counts = _ground_truth_scores(reference, sorting, delta_time_ms)
        summary.update(counts)
        paths["performance"] = output / "performance.csv"
        performance.to_csv(paths["performance"])
    paths["summary"].write_text(json.dumps(summary, indent=2))
    logger.info("compare: %d of %d reference units matched, mean agreement %.3f", summary["num_matched"],
                summary["num_reference_units"], summary["mean_matched_agreement"])
    return CompareResult(output, agreement, summary, performance, paths)


def _agreement_table(comparison, reference, sorting) -> pd.DataFrame:
    """Per reference unit: its spike count, its one-to-one match with agreement, and its best-scoring unit."""
    scores = comparison.agreement_scores
    reference_counts, sorting_counts = reference.count_num_spikes_per_unit(), sorting.count_num_spikes_per_unit()
    rows = []
    for unit in reference.unit_ids:
        match = comparison.hungarian_match_12[unit]
        has_match = match in scores.columns  # unmatched is -1 for integer ids, "" for string ids
        best = scores.loc[unit].idxmax() if scores.shape[1] else None
        rows.append({
            "reference_unit": str(unit),
            "num_spikes_reference": int(reference_counts[unit]),
            "matched_unit": str(match) if has_match else None,
            "agreement": float(scores.at[unit, match]) if has_match else 0.0,
            "num_spikes_matched": int(sorting_counts[match]) if has_match else 0,
            "best_unit": None if best is None else str(best),
            "best_agreement": float(scores.loc[unit].max()) if best is not None else 0.0,
        })
    return pd.DataFrame(rows).set_index("reference_unit")


def _ground_truth_scores(reference, sorting, delta_time_ms: float) -> tuple[pd.DataFrame, dict]:
    comparison = compare_sorter_to_ground_truth(reference, sorting, delta_time=delta_time_ms, exhaustive_gt=True)
    performance = comparison.get_performance(method="by_unit").astype(float)
    performance.index = [str(u) for u in performance.index]
    performance.index.name = "reference_unit"
    summary = summarise_comparison(comparison)
    counts = {"mean_accuracy": summary["mean_accuracy"], "num_well_detected": summary["well_detected"],
              "num_false_positive": summary["false_positive_units"], "num_redundant": summary["redundant_units"],
              "num_overmerged": summary["overmerged_units"]}
    return performance, counts
