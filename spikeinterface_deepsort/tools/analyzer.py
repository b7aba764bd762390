"""The one SortingAnalyzer of a sort, built for the report and for the exports, and the one
definition of a unit's position and depth that both use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..stages.preprocessing import for_analysis

# Centre of mass, the estimator of spikes.depths too, so that a cluster's depth lies
# within its spikes' depths (monopolar triangulation moved units away from them).
UNIT_LOCATION_METHOD = "center_of_mass"


def build_analyzer(sorting, recording, *, params: dict | None = None, folder: str | Path | None = None,
                   seed: int = 0, job_kwargs: dict | None = None, max_spikes_per_unit: int = 300,
                   waveforms: bool = False, template_operators=("average", "std"), spike_locations: bool = True,
                   radius_um: float = 100.0):
    """A SortingAnalyzer with templates, noise levels, amplitudes and unit locations.

    ``recording`` is filtered as the sort's ``params`` say when it is not already
    (:func:`for_analysis`). In memory, or saved in ``folder`` when given. ``waveforms=True``
    keeps the sampled spikes' waveforms (principal components and the report's spread need
    them); ``spike_locations`` gives every spike's depth (ALF's spikes.depths).
    """
    from spikeinterface.core import create_sorting_analyzer

    job_kwargs = dict(job_kwargs or {})
    job_kwargs.setdefault("progress_bar", False)
    storage = dict(format="binary_folder", folder=folder, overwrite=True) if folder is not None else dict(format="memory")
    analyzer = create_sorting_analyzer(sorting, for_analysis(recording, params), sparse=True,
                                       sparsity_kwargs=dict(method="radius", radius_um=radius_um), seed=seed,
                                       job_kwargs=job_kwargs, **storage)
    # waveforms before templates: SpikeInterface drops the templates when waveforms come after them
    names = (["random_spikes"] + (["waveforms"] if waveforms else []) + ["templates", "noise_levels", "spike_amplitudes"]
             + (["spike_locations"] if spike_locations else []))
    extension_params = dict(
        random_spikes=dict(method="uniform", max_spikes_per_unit=max_spikes_per_unit, seed=seed),
        templates=dict(operators=list(template_operators)),
        noise_levels=dict(random_slices_kwargs=dict(seed=seed)),
        spike_locations=dict(method=UNIT_LOCATION_METHOD),
    )
    analyzer.compute(names, extension_params={name: extension_params[name] for name in names if name in extension_params},
                     verbose=False, **job_kwargs)
    unit_locations(analyzer)
    return analyzer


def unit_locations(analyzer) -> np.ndarray:
    """Each unit's position in µm, (n_units, 2 or 3), by :data:`UNIT_LOCATION_METHOD`.

    The ``unit_locations`` extension is computed (or recomputed, when it was computed with
    another method) on ``analyzer``, which needs ``templates``.
    """
    extension = analyzer.get_extension("unit_locations")
    if extension is None or extension.params.get("method") != UNIT_LOCATION_METHOD:
        analyzer.compute("unit_locations", method=UNIT_LOCATION_METHOD)
        extension = analyzer.get_extension("unit_locations")
    return np.asarray(extension.get_data(), dtype=np.float64)


def unit_depths(analyzer) -> np.ndarray:
    """Each unit's depth in µm along the probe (its y axis; x on a one-dimensional layout).

    The one definition of depth shared by ALF's ``clusters.depths`` and the report: the
    y coordinate of :func:`unit_locations`.
    """
    locations = unit_locations(analyzer)
    depth_axis = 1 if analyzer.get_channel_locations().shape[1] > 1 else 0
    return locations[:, depth_axis]
