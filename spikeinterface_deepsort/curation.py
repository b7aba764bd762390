"""Stage 7: curation after matching.

Over-split units (two clusters of one neuron) are merged with SpikeInterface's
``auto_merge_units``: candidates must be close on the probe and have similar templates,
and the merge must not create refractory-period violations ("x_contaminations"
preset). The template-difference threshold is raised in small steps so that the most
similar pairs merge first.
"""

from __future__ import annotations

import numpy as np
from spikeinterface.core import NumpySorting
from spikeinterface.curation.auto_merge import auto_merge_units
from spikeinterface.sortingcomponents.tools import create_sorting_analyzer_with_existing_templates


def merge_units(recording, sorting, templates, spikes, noise_levels, params, job_kwargs):
    max_diff = params["merge_max_template_diff"]
    if max_diff <= 0 or len(sorting.unit_ids) < 2:
        return sorting
    amplitudes = spikes["amplitude"] if "amplitude" in spikes.dtype.names else None
    if amplitudes is not None:
        order = np.lexsort((spikes["cluster_index"], spikes["sample_index"], spikes["segment_index"]))
        amplitudes = amplitudes[order]
    analyzer = create_sorting_analyzer_with_existing_templates(
        sorting, recording, templates, noise_levels=noise_levels, amplitude_scalings=amplitudes
    )
    analyzer.compute("unit_locations", method="center_of_mass", **job_kwargs)
    analyzer.compute("template_similarity", method="l1", support="union", max_lag_ms=0.2)
    thresholds = np.arange(0.05, max_diff + 1e-9, 0.05)
    merged = auto_merge_units(
        analyzer,
        presets=["x_contaminations"] * len(thresholds),
        steps_params=[
            {"template_similarity": {"template_diff_thresh": float(t)}, "unit_locations": {"max_distance_um": 50}}
            for t in thresholds
        ],
        recursive=True,
        censor_ms=3.0,
        sparsity_overlap=0.5,
        **job_kwargs,
    )
    return NumpySorting.from_sorting(merged.sorting)
