"""The sorting report: an HTML page of figures, unit labels and quality metrics.

``make_report(OUT)`` reads a finished sorter folder (``run_sorter("deepspikesort", ...,
folder=OUT)``), builds a SpikeInterface ``SortingAnalyzer`` on the final Sorting and the
recording, labels each unit (``unit_labels.py``: bombcell where installed, else thresholds
on SpikeInterface's quality metrics) and writes ``OUT/report/``::

    index.html              the page; open it in any browser (relative links only)
    quality_metrics.csv     one row per unit: spike count, SNR, ISI violations, firing rate,
                            presence ratio, amplitude cutoff
    unit_labels.csv         one row per unit: label, the tests behind it, untested metrics
    *.png                   the figures the page shows
    analyzer/               the SortingAnalyzer (si.load_sorting_analyzer reads it)
    bombcell/               bombcell's own tables, where bombcell labelled the units

The figures (``report_figures.py``, ``report_training.py``): templates on the probe,
amplitudes over time, ISI histograms, autocorrelograms, unit locations, what the
DeepCluster rounds did and a 2-D projection of the learned embedding.

The same report is written at the end of a sort with the sorter parameter
``make_report=True``, and from a shell with ``deepspikesort report OUT``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...errors import DeepSortError
from ...output_folders import mark_folder, remove_own_folder
from ..analyzer import UNIT_LOCATION_METHOD, build_analyzer, unit_locations
from ...run_folder import RunFolder
from .unit_figures import Figure, amplitude_figure, autocorrelogram_figure, isi_figure, location_figure, pages
from .unit_figures import save, template_figure, unit_colors
from .page import render_page
from .training_figures import deepcluster_figure, embedding_figure
from .unit_labels import label_units

logger = logging.getLogger("spikeinterface_deepsort.tools.report.build")

QUALITY_METRICS = ["num_spikes", "snr", "isi_violation", "firing_rate", "presence_ratio", "amplitude_cutoff"]
# The columns these metrics give in quality_metrics.csv (isi_violation gives two).
QUALITY_METRIC_COLUMNS = ["num_spikes", "snr", "isi_violations_ratio", "isi_violations_count", "firing_rate",
                          "presence_ratio", "amplitude_cutoff"]


def make_report(output_folder, recording=None, report_folder=None, verbose: bool = True,
                interactive: bool = False) -> Path:
    """Write the report of the sort in ``output_folder``; returns the report folder.

    ``output_folder`` is the folder given to ``run_sorter`` (its ``sorter_output``
    sub-folder is accepted too). ``recording`` is the recording that was sorted; by
    default it is reloaded from the folder, which works whenever SpikeInterface could
    save it there (any recording read from files). ``report_folder`` defaults to
    ``output_folder/report``; an existing report there is replaced. ``verbose=False``
    hides the progress bars. ``interactive=True`` also writes ``interactive/``, SpikeInterface's
    sorting summary as a figpack page (needs the ``interactive`` extra), linked from the page.
    """
    import matplotlib

    matplotlib.use("Agg")
    import spikeinterface.core as sic
    from tqdm.auto import tqdm

    run = RunFolder.locate(output_folder)
    sorter_folder, sorter_output = run.output_folder, run.path
    if interactive:
        _check_figpack()
    params = dict(run.saved_params(), seed=run.run_seed())  # the seed it ran with, also where seed=None
    if recording is None:
        recording = run.load_recording()
    report_folder = Path(report_folder) if report_folder is not None else sorter_folder / "report"
    _clear_report_folder(report_folder)

    sorting = sic.load(run.sorting_path)
    logger.info("report: %d units, writing into %s", len(sorting.unit_ids), report_folder)
    job_kwargs = dict(params.get("job_kwargs") or {})
    job_kwargs["progress_bar"] = bool(job_kwargs.get("progress_bar", True)) and verbose
    colors = unit_colors(sorting.unit_ids)

    figures: list[Figure] = []
    analyzer = labels = None
    steps = ["analyzer", "unit labels", "unit figures", "deepcluster", "embedding"]
    with tqdm(total=len(steps), desc="report", disable=not verbose) as bar:
        bar.set_postfix_str("analyzer")
        if len(sorting.unit_ids) > 0:
            analyzer = build_report_analyzer(sorting, recording, report_folder / "analyzer", params, job_kwargs)
        bar.update()

        bar.set_postfix_str("unit labels")
        if analyzer is not None:
            labels = label_units(analyzer, report_folder / "bombcell", n_jobs=job_kwargs.get("n_jobs", 1))
        metrics = _write_tables(analyzer, labels, report_folder)
        bar.update()

        bar.set_postfix_str("unit figures")
        if analyzer is not None:
            figures += _unit_figures(analyzer, labels.labels, colors, report_folder, params["seed"])
        bar.update()

        bar.set_postfix_str("deepcluster")
        figures += deepcluster_figure(sorter_output, report_folder, params)
        bar.update()

        bar.set_postfix_str("embedding")
        figures += embedding_figure(sorter_output, report_folder, params, colors)
        bar.update()
    if interactive and analyzer is not None:
        _interactive_view(analyzer, labels, report_folder / "interactive")

    page = render_page(sorter_folder, sorter_output, report_folder, recording, sorting, analyzer, metrics, labels,
                       figures)
    (report_folder / "index.html").write_text(page, encoding="utf8")
    logger.info("report written: %s (%d figures)", report_folder / "index.html", len(figures))
    return report_folder


REPORT_KIND = "report"


def _clear_report_folder(report_folder: Path) -> None:
    """Start the report folder anew: a previous report of ours is replaced, any other folder refused."""
    remove_own_folder(report_folder, kind=REPORT_KIND, option="--output")
    report_folder.mkdir(parents=True)
    mark_folder(report_folder, REPORT_KIND)


def build_report_analyzer(sorting, recording, folder: Path, params: dict, job_kwargs: dict):
    """The sort's analyzer (:func:`tools.analyzer.build_analyzer`), saved in ``folder``, with what the
    report adds: waveforms and their spread, correlograms, ISI histograms and quality metrics."""
    analyzer = build_analyzer(sorting, recording, params=params, folder=folder, seed=params["seed"],
                              job_kwargs=job_kwargs, max_spikes_per_unit=500, waveforms=True,
                              template_operators=("average", "median", "std"), spike_locations=False)
    analyzer.compute("correlograms", window_ms=50.0, bin_ms=1.0)
    analyzer.compute("isi_histograms", window_ms=50.0, bin_ms=1.0)
    # Presence ratio: SpikeInterface's 60 s bins leave it undefined on recordings under a minute.
    bin_s = float(min(60.0, max(recording.get_total_duration() / 10.0, 1.0)))
    analyzer.compute("quality_metrics", metric_names=QUALITY_METRICS, skip_pc_metrics=True,
                     metric_params={"presence_ratio": {"bin_duration_s": bin_s}})
    return analyzer


def _write_tables(analyzer, labels, folder: Path):
    """quality_metrics.csv and unit_labels.csv; returns the metrics table the page shows."""
    import pandas as pd

    if analyzer is None:
        metrics = pd.DataFrame(columns=QUALITY_METRIC_COLUMNS)
        table = pd.DataFrame(columns=["label", "failed_tests", "untested_metrics"])
    else:
        # Read after labelling: bombcell recomputes some metrics (amplitude_cutoff from amplitude
        # scalings), and the table must show the values the labels were decided on.
        metrics = analyzer.get_extension("quality_metrics").get_data()[QUALITY_METRIC_COLUMNS].copy()
        table = pd.DataFrame({"label": [labels.labels[u] for u in metrics.index],
                              "failed_tests": ["; ".join(labels.failures(u)) for u in metrics.index],
                              "untested_metrics": ["; ".join(labels.untested(u)) for u in metrics.index]},
                             index=metrics.index)
    for frame, name in ((metrics, "quality_metrics.csv"), (table, "unit_labels.csv")):
        frame.index.name = "unit_id"
        frame.to_csv(folder / name)
    return metrics


# The unit figures drawn page by page (at most one page of units per figure): file stem, title, caption.
_PAGED_FIGURES = {
    "unit_templates": (template_figure, "Templates on the probe",
                       "Mean waveform of each unit (line) ± one standard deviation (band) on each of its channels, "
                       "drawn where the channel sits on the probe. Scale bars: 1 ms, and the µV given beside the "
                       "vertical bar (each unit is scaled to its own amplitude)."),
    "isi_histograms": (isi_figure, "Inter-spike-interval histograms",
                       "Intervals between consecutive spikes of each unit (0-50 ms, 1 ms bins); the red band is the "
                       "ISI-violation threshold of the quality metrics: a well-isolated neuron has almost no "
                       "interval there."),
    "autocorrelograms": (autocorrelogram_figure, "Autocorrelograms",
                         "Spike-time autocorrelogram of each unit (±25 ms, 1 ms bins); a dip at zero lag shows the "
                         "refractory period."),
}


def _paged_figures(stem: str, analyzer, labels: dict, colors: dict, folder: Path) -> list[Figure]:
    draw, title, caption = _PAGED_FIGURES[stem]
    groups = pages(list(analyzer.unit_ids))
    figures = []
    for i, units in enumerate(groups):
        name = f"{stem}.png" if len(groups) == 1 else f"{stem}_{i + 1:02d}.png"
        width = save(draw(analyzer, units, colors, labels), folder / name)
        figures.append(Figure(name, title if len(groups) == 1 else f"{title}: units {units[0]} to {units[-1]}",
                              caption, width))
    return figures


def _unit_figures(analyzer, labels: dict, colors: dict, folder: Path, seed: int) -> list[Figure]:
    figures = _paged_figures("unit_templates", analyzer, labels, colors, folder)
    width = save(amplitude_figure(analyzer, colors, seed), folder / "amplitudes.png")
    figures.append(Figure("amplitudes.png", "Amplitudes over time",
                          "Spike amplitude (µV, on the unit's main channel) against time, and its distribution; "
                          "drifting or truncated distributions point to motion or to spikes lost under the "
                          "threshold.", width))
    figures += _paged_figures("isi_histograms", analyzer, labels, colors, folder)
    figures += _paged_figures("autocorrelograms", analyzer, labels, colors, folder)
    width = save(location_figure(analyzer, unit_locations(analyzer), colors, labels), folder / "unit_locations.png")
    figures.append(Figure("unit_locations.png", "Unit locations on the probe",
                          f"Each unit's position ({UNIT_LOCATION_METHOD.replace('_', ' ')} of its template: the "
                          "definition of depth of the ALF export's clusters.depths too) over the probe's contacts "
                          "(grey squares); diamonds: units not labelled good.", width))
    return figures


def _check_figpack() -> None:
    try:
        import figpack_spike_sorting  # noqa: F401
    except ImportError as error:
        raise DeepSortError("The interactive view needs figpack-spike-sorting: pip install "
                            "\"spikeinterface-deepsort[interactive]\" (or run the report without it).") from error


def _interactive_view(analyzer, labels, folder: Path) -> None:
    """SpikeInterface's sorting summary (units table with the labels, templates, amplitudes,
    correlograms, locations) as a self-contained figpack folder; it renders offline, served
    over HTTP (browsers do not run its scripts from file://)."""
    import spikeinterface.widgets as sw

    if not analyzer.has_extension("template_similarity"):
        analyzer.compute("template_similarity")
    unit_label = np.array([labels.labels[u] for u in analyzer.unit_ids])
    widget = sw.plot_sorting_summary(analyzer, backend="figpack", display=False, curation=False,
                                     extra_unit_properties={"label": unit_label},
                                     displayed_unit_properties=["label", "num_spikes", "snr", "firing_rate"])
    widget.view.save(str(folder), title="DeepSpikeSort units")
