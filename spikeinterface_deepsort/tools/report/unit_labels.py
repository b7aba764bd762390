"""A label for each unit (good, MUA, noise, non-somatic) and the reason for every missing metric.

``label_units(analyzer)`` labels the units of a SortingAnalyzer with bombcell's
``run_bombcell_qc`` where bombcell is installed (``pip install "spikeinterface-deepsort[labels]"``),
and otherwise with thresholds on SpikeInterface's quality metrics (``FALLBACK_THRESHOLDS``).
Either way the result carries the thresholds that were applied, the values they were
applied to and, for each unit, the tests it failed, so that a report can show why a unit
is MUA. ``missing_reason`` says why SpikeInterface left a metric undefined (NaN) for a unit.

Both labellers share one rule, SpikeInterface's ``bombcell_label_units``: a unit failing
any "noise" test is noise, else a unit failing any "mua" test is MUA, else good; a
"non-somatic" waveform shape (bombcell only) overrides good and MUA. A test passes when
``greater <= value <= less``. An undefined value fails a noise test and is left untested
by a MUA test, except ``sliding_rp_violation``, where undefined means the refractory-period
test could not pass.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("spikeinterface_deepsort.tools.report.unit_labels")

# Without bombcell: a unit is noise when its template barely stands out of the noise, and MUA
# when it misses the Allen Institute's usual single-unit criteria (Siegle et al. 2021: ISI
# violations < 0.5, amplitude cutoff < 0.1, presence ratio > 0.9) or SNR 5.
FALLBACK_THRESHOLDS = {
    "noise": {"snr": {"greater": 3.0, "less": None}},
    "mua": {
        "snr": {"greater": 5.0, "less": None},
        "isi_violations_ratio": {"greater": None, "less": 0.5},
        "amplitude_cutoff": {"greater": None, "less": 0.1},
        "presence_ratio": {"greater": 0.9, "less": None},
        "firing_rate": {"greater": 0.1, "less": None},
    },
}
SECTIONS = ("noise", "mua", "non-somatic")
NAN_FAILS_MUA = {"sliding_rp_violation"}  # as in SpikeInterface's bombcell_label_units


@dataclass
class UnitLabels:
    labels: dict  # unit id -> "good", "mua", "noise" or "non_soma"
    thresholds: dict  # section -> metric -> {"greater": ..., "less": ..., "abs": ...}, as applied
    metrics: "pd.DataFrame"  # the values the thresholds were applied to, one row per unit
    source: str  # who labelled, in words
    not_computed: list = field(default_factory=list)  # threshold metrics left out because they were not computed

    def failures(self, unit_id) -> list[str]:
        """The tests behind the unit's label, as "snr 3.2 < 5": the noise tests of a noise unit, and so on."""
        section = {"noise": "noise", "mua": "mua", "non_soma": "non-somatic"}.get(self.labels[unit_id])
        if section is None:
            return []
        row = self.metrics.loc[unit_id]
        return [text for metric, limits in self.thresholds.get(section, {}).items()
                if (text := _failed(metric, row.get(metric, np.nan), limits, section)) is not None]

    def untested(self, unit_id) -> list[str]:
        """Metrics of the thresholds that are undefined for this unit and so decided nothing."""
        row = self.metrics.loc[unit_id]
        return sorted({metric for section in ("mua", "non-somatic") for metric in self.thresholds.get(section, {})
                       if metric not in NAN_FAILS_MUA and metric in row and np.isnan(float(row[metric]))})


def _failed(metric: str, value, limits: dict, section: str) -> str | None:
    value = float(value)
    if np.isnan(value):
        # An undefined value fails the noise tests and sliding_rp_violation only (see the module docstring).
        return f"{metric} undefined" if section == "noise" or metric in NAN_FAILS_MUA else None
    shown = abs(value) if limits.get("abs") else value
    name = f"|{metric}|" if limits.get("abs") else metric
    low, high = limits.get("greater"), limits.get("less")
    if low is not None and shown < low:
        return f"{name} {shown:.3g} < {low:g}"
    if high is not None and shown > high:
        return f"{name} {shown:.3g} > {high:g}"
    return None


def describe_limits(limits: dict) -> str:
    """A threshold as a passing range, e.g. "≥ 5", "≤ 0.2", "0.0001 to 0.00115"."""
    low, high = limits.get("greater"), limits.get("less")
    prefix = "|x| " if limits.get("abs") else ""
    if low is not None and high is not None:
        return f"{prefix}{low:g} to {high:g}"
    if low is not None:
        return f"{prefix}≥ {low:g}"
    return f"{prefix}≤ {high:g}" if high is not None else "off"


def _active(thresholds: dict, columns) -> tuple[dict, list]:
    """The thresholds whose metric was computed, and the metrics that were not."""
    active, missing = {}, []
    for section in SECTIONS:
        for metric, limits in thresholds.get(section, {}).items():
            if limits.get("greater") is None and limits.get("less") is None:
                continue
            if metric in columns:
                active.setdefault(section, {})[metric] = limits
            else:
                missing.append(metric)
    return active, sorted(set(missing))


def label_units(analyzer, folder: Path | None = None, n_jobs: int = 1) -> UnitLabels:
    """bombcell's labels where bombcell is installed, else :func:`threshold_labels`.

    The analyzer needs the ``quality_metrics`` extension (and, for bombcell, what
    ``run_bombcell_qc`` computes itself: template metrics, amplitude scalings, spike
    locations). bombcell writes its tables into ``folder`` when given.
    """
    with contextlib.redirect_stdout(io.StringIO()):  # bombcell prints a banner on import
        try:
            import bombcell
        except ImportError:
            bombcell = None
    if bombcell is None:
        logger.info("unit labels: bombcell is not installed; thresholds on SpikeInterface's quality metrics")
        return threshold_labels(analyzer)
    try:
        return bombcell_labels(analyzer, folder, n_jobs)
    except Exception as error:  # a report is still worth having: say on the page why bombcell did not label
        logger.warning("unit labels: bombcell failed (%s: %s); thresholds on SpikeInterface's quality metrics "
                       "instead", type(error).__name__, error)
        result = threshold_labels(analyzer)
        result.source = (f"thresholds on SpikeInterface's quality metrics (bombcell failed: "
                         f"{type(error).__name__}: {error})")
        return result


def threshold_labels(analyzer, thresholds: dict | None = None) -> UnitLabels:
    """Labels from ``thresholds`` (default ``FALLBACK_THRESHOLDS``) on the analyzer's quality metrics."""
    from spikeinterface.curation import bombcell_label_units

    metrics = analyzer.get_extension("quality_metrics").get_data()
    active, missing = _active(thresholds or FALLBACK_THRESHOLDS, metrics.columns)
    labels = bombcell_label_units(external_metrics=metrics, thresholds=active)["bombcell_label"]
    return UnitLabels(dict(labels.items()), active, metrics,
                      "thresholds on SpikeInterface's quality metrics (bombcell is not installed)", missing)


def bombcell_labels(analyzer, folder: Path | None = None, n_jobs: int = 1) -> UnitLabels:
    """bombcell's ``run_bombcell_qc`` with its default thresholds and parameters but one.

    The one: presence-ratio bins are those the analyzer's quality metrics already use
    (60 s, bombcell's default, on recordings of 10 minutes or more; a tenth of the
    recording on shorter ones, where 60 s bins leave the ratio undefined), so the
    report's table and bombcell's labels read the same presence ratio.
    """
    import bombcell
    from spikeinterface.curation import bombcell_get_default_thresholds

    qm_params = analyzer.get_extension("quality_metrics").params["metric_params"]
    bin_s = qm_params.get("presence_ratio", {}).get("bin_duration_s", 60)
    # bombcell's noise and non-somatic tests read the template's shape across channels.
    if not analyzer.has_extension("template_metrics"):
        analyzer.compute("template_metrics", include_multi_channel_metrics=True)
    params = dict(bombcell.get_default_qc_params(), presence_ratio_bin_duration_s=bin_s,
                  plot_histograms=False, plot_waveforms=False, plot_upset=False)
    thresholds = bombcell_get_default_thresholds()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # bombcell prints its label counts
        labels, metrics, _ = bombcell.run_bombcell_qc(analyzer, output_folder=folder, params=params,
                                                      thresholds=copy.deepcopy(thresholds), n_jobs=n_jobs,
                                                      progress_bar=False)
    logger.debug("bombcell: %s", printed.getvalue().strip())
    active, missing = _active(thresholds, metrics.columns)
    version = getattr(bombcell, "__version__", "")
    source = f"bombcell {version} (run_bombcell_qc, default thresholds; presence-ratio bins of {bin_s:g} s)"
    return UnitLabels(dict(labels["bombcell_label"].items()), active, metrics, source, missing)


# ---------------------------------------------------------------------------- why a metric is missing


def missing_reason(analyzer, metric: str, unit_id) -> str:
    """Why SpikeInterface left ``metric`` undefined (NaN) for ``unit_id``, in a sentence."""
    explain = _REASONS.get(metric)
    if explain is not None:
        reason = explain(analyzer, unit_id)
        if reason:
            return reason
    return f"SpikeInterface returned no value for {metric} on this unit"


def _metric_params(analyzer, extension: str, metric: str) -> dict:
    ext = analyzer.get_extension(extension)
    return dict(ext.params.get("metric_params", {}).get(metric, {})) if ext is not None else {}


def _n_spikes(analyzer, unit_id) -> int:
    return int(analyzer.sorting.count_num_spikes_per_unit()[unit_id])


def _amplitude_cutoff_reason(analyzer, unit_id) -> str | None:
    p = _metric_params(analyzer, "quality_metrics", "amplitude_cutoff")
    bins, ratio = p.get("num_histogram_bins", 100), p.get("amplitudes_bins_min_ratio", 5)
    if _n_spikes(analyzer, unit_id) < bins * ratio:
        return (f"fewer than {bins * ratio} spikes: SpikeInterface's amplitude_cutoff needs {ratio} per bin of "
                f"its {bins}-bin amplitude histogram")
    return None


def _presence_ratio_reason(analyzer, unit_id) -> str | None:
    bin_s = _metric_params(analyzer, "quality_metrics", "presence_ratio").get("bin_duration_s", 60)
    duration = analyzer.get_total_duration()
    if duration < bin_s:
        return f"the recording ({duration:.0f} s) is shorter than one {bin_s:g} s presence-ratio bin"
    return "the unit has no spikes" if _n_spikes(analyzer, unit_id) == 0 else None


def _drift_reason(analyzer, unit_id) -> str:
    p = _metric_params(analyzer, "quality_metrics", "drift")
    interval, min_spikes, min_bins = p.get("interval_s", 60), p.get("min_spikes_per_interval", 100), p.get("min_num_bins", 2)
    shortest = min(analyzer.get_num_samples(s) for s in range(analyzer.get_num_segments())) / analyzer.sampling_frequency
    if shortest < min_bins * interval:
        return f"the recording ({shortest:.0f} s) holds fewer than {min_bins} drift intervals of {interval:g} s"
    return f"more than half of the unit's {interval:g} s intervals hold fewer than {min_spikes} spikes"


def _sliding_rp_reason(analyzer, unit_id) -> str:
    return ("no contamination level passes the sliding refractory-period test with 90 % confidence (too few "
            "spikes, or too many refractory-period violations); bombcell counts this as a failure")


def _exp_decay_reason(analyzer, unit_id) -> str:
    from spikeinterface.metrics.template.metrics import get_exp_decay

    p = _metric_params(analyzer, "template_metrics", "exp_decay")
    min_r2 = p.get("min_r2", 0.2)
    channels = analyzer.sparsity.unit_id_to_channel_indices[unit_id] if analyzer.sparsity is not None else slice(None)
    template = analyzer.get_extension("templates").get_unit_template(unit_id, operator="average")[:, channels]
    locations = analyzer.get_channel_locations()[channels]
    # Refit without the r² floor to tell a poor fit from a failed one.
    refit = get_exp_decay(template, locations, analyzer.sampling_frequency, **dict(p, min_r2=-np.inf))
    if np.isnan(refit):
        return "the exponential fit of the template's amplitude against distance from its main channel failed"
    return (f"the exponential fit of the template's amplitude against distance from its main channel is worse "
            f"than SpikeInterface's min_r2 = {min_r2:g} (too few channels, or an irregular footprint)")


def _width_reason(feature: str):
    def reason(analyzer, unit_id) -> str:
        return f"SpikeInterface found no {feature} on the template whose width it could measure"
    return reason


_REASONS = {
    "amplitude_cutoff": _amplitude_cutoff_reason,
    "presence_ratio": _presence_ratio_reason,
    "drift_ptp": _drift_reason, "drift_std": _drift_reason, "drift_mad": _drift_reason,
    "sliding_rp_violation": _sliding_rp_reason,
    "exp_decay": _exp_decay_reason,
    "peak_before_width": _width_reason("peak before the trough"),
    "peak_after_width": _width_reason("peak after the trough"),
    "trough_width": _width_reason("trough"),
}
