"""The sorting report: an HTML page of figures and a table of quality metrics.

``make_report(OUT)`` reads a finished sorter folder (``run_sorter("deepspikesort", ...,
folder=OUT)``), builds a SpikeInterface ``SortingAnalyzer`` on the final Sorting and the
recording, and writes ``OUT/report/``::

    index.html              the page; open it in any browser (relative links only)
    quality_metrics.csv     one row per unit: SNR, ISI violations, firing rate,
                            presence ratio, amplitude cutoff
    *.png                   the figures the page shows
    analyzer/               the SortingAnalyzer (si.load_sorting_analyzer reads it)

The figures are SpikeInterface's own widgets (templates on the probe, amplitudes over
time, ISI histograms, autocorrelograms, unit locations) and two of DeepSpikeSort's: the
DeepCluster training curves and a 2-D projection of the learned embedding.

The same report is written at the end of a sort with the sorter parameter
``make_report=True``, and from a shell with ``deepspikesort report OUT``.
"""

from __future__ import annotations

import csv
import datetime
import html
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .deepcluster import plot_history
from .errors import OutputFolderError
from .params import SORTER_PARAMS
from .preprocessing import for_analysis

logger = logging.getLogger("spikeinterface_deepsort.report")

QUALITY_METRICS = ["snr", "isi_violation", "firing_rate", "presence_ratio", "amplitude_cutoff"]
# The columns these metrics give in quality_metrics.csv (isi_violation gives two).
QUALITY_METRIC_COLUMNS = ["snr", "isi_violations_ratio", "isi_violations_count", "firing_rate", "presence_ratio",
                          "amplitude_cutoff"]
UNITS_PER_FIGURE = 20
MAX_EMBEDDED_PEAKS = 5000
DPI = 90


@dataclass
class Figure:
    filename: str
    title: str
    caption: str


def make_report(output_folder, recording=None, report_folder=None, verbose: bool = True) -> Path:
    """Write the report of the sort in ``output_folder``; returns the report folder.

    ``output_folder`` is the folder given to ``run_sorter`` (its ``sorter_output``
    sub-folder is accepted too). ``recording`` is the recording that was sorted; by
    default it is reloaded from the folder, which works whenever SpikeInterface could
    save it there (any recording read from files). ``report_folder`` defaults to
    ``output_folder/report``; an existing report there is replaced. ``verbose=False``
    hides the progress bars.
    """
    import matplotlib

    matplotlib.use("Agg")
    import spikeinterface.core as sic
    from tqdm.auto import tqdm

    sorter_folder, sorter_output = _resolve_folders(output_folder)
    params = _sorter_params(sorter_folder)
    if recording is None:
        recording = _reload_recording(sorter_folder)
    report_folder = Path(report_folder) if report_folder is not None else sorter_folder / "report"
    _clear_report_folder(report_folder)

    sorting = sic.load(sorter_output / "sorting")
    logger.info("report: %d units, writing into %s", len(sorting.unit_ids), report_folder)
    job_kwargs = dict(params.get("job_kwargs") or {})
    job_kwargs["progress_bar"] = bool(job_kwargs.get("progress_bar", True)) and verbose

    figures: list[Figure] = []
    metrics = None
    steps = ["analyzer", "unit figures", "deepcluster", "embedding"]
    with tqdm(total=len(steps), desc="report", disable=not verbose) as bar:
        bar.set_postfix_str("analyzer")
        analyzer = None
        if len(sorting.unit_ids) > 0:
            analyzer = _build_analyzer(sorting, for_analysis(recording, params), report_folder / "analyzer",
                                       params, job_kwargs)
            metrics = analyzer.get_extension("quality_metrics").get_data()
        _write_quality_metrics(metrics, report_folder / "quality_metrics.csv")
        bar.update()

        bar.set_postfix_str("unit figures")
        if analyzer is not None:
            figures += _unit_figures(analyzer, report_folder)
        bar.update()

        bar.set_postfix_str("deepcluster")
        figures += _deepcluster_figure(sorter_output, report_folder, params)
        bar.update()

        bar.set_postfix_str("embedding")
        unit_colors = _unit_colors(sorting)
        figures += _embedding_figure(sorter_output, report_folder, params, unit_colors)
        bar.update()

    page = _render_page(sorter_folder, sorter_output, report_folder, recording, sorting, metrics, figures)
    (report_folder / "index.html").write_text(page, encoding="utf8")
    logger.info("report written: %s (%d figures)", report_folder / "index.html", len(figures))
    return report_folder


# ---------------------------------------------------------------------------- inputs


def _resolve_folders(output_folder) -> tuple[Path, Path]:
    folder = Path(output_folder)
    if folder.name == "sorter_output" and (folder / "sorting").exists():
        folder = folder.parent
    sorter_output = folder / "sorter_output"
    if not folder.exists():
        raise OutputFolderError(f"Sorter folder {folder} does not exist.")
    if not (sorter_output / "sorting").exists():
        raise OutputFolderError(
            f"{folder} holds no finished deepspikesort sort (no {sorter_output / 'sorting'}). Pass the folder given "
            "to run_sorter(..., folder=...) or `deepspikesort sort --output`, after the sort has finished."
        )
    return folder, sorter_output


def _sorter_params(sorter_folder: Path) -> dict:
    path = sorter_folder / "spikeinterface_params.json"
    params = SORTER_PARAMS.defaults()
    if path.exists():
        params.update(json.loads(path.read_text()).get("sorter_params", {}))
    return params


def _reload_recording(sorter_folder: Path):
    from spikeinterface.sorters import BaseSorter

    path = sorter_folder / "spikeinterface_recording.json"
    reason = "the folder holds no saved recording"
    if path.exists() and "warning" in json.loads(path.read_text()):
        reason = "the recording that was sorted could not be saved by SpikeInterface (it is not serialisable)"
    elif path.exists() or (sorter_folder / "spikeinterface_recording.pickle").exists():
        try:
            recording = BaseSorter.load_recording_from_folder(sorter_folder, with_warnings=False)
            if recording is not None:
                return recording
        except Exception as error:  # moved or deleted raw data, typically
            reason = f"the saved recording could not be opened ({type(error).__name__}: {error})"
    raise OutputFolderError(
        f"Cannot reload the recording of {sorter_folder}: {reason}. Pass it explicitly: "
        "make_report(folder, recording=recording) in Python, or `deepspikesort report FOLDER --recording PATH`."
    )


REPORT_PNG_PATTERNS = ["unit_templates*.png", "amplitudes.png", "isi_histograms*.png", "autocorrelograms*.png",
                       "unit_locations.png", "deepcluster_history.png", "embedding.png"]


def _clear_report_folder(report_folder: Path) -> None:
    """Remove a previous report's files (only those a report writes; the analyzer is overwritten when rebuilt)."""
    report_folder.mkdir(parents=True, exist_ok=True)
    for pattern in REPORT_PNG_PATTERNS:
        for path in report_folder.glob(pattern):
            path.unlink()
    for name in ("index.html", "quality_metrics.csv"):
        (report_folder / name).unlink(missing_ok=True)


def _build_analyzer(sorting, recording, folder: Path, params: dict, job_kwargs: dict):
    import spikeinterface.core as sic

    seed = params.get("seed") or 0
    analyzer = sic.create_sorting_analyzer(sorting, recording, format="binary_folder", folder=folder, sparse=True,
                                           overwrite=True, seed=seed, job_kwargs=job_kwargs)
    analyzer.compute("random_spikes", method="uniform", max_spikes_per_unit=500, seed=seed)
    analyzer.compute("waveforms", ms_before=1.0, ms_after=2.0, **job_kwargs)
    analyzer.compute("templates", operators=["average", "median", "std"])
    analyzer.compute("noise_levels", random_slices_kwargs=dict(seed=seed), **job_kwargs)
    analyzer.compute("spike_amplitudes", **job_kwargs)
    analyzer.compute("unit_locations", method="monopolar_triangulation")
    analyzer.compute("correlograms", window_ms=50.0, bin_ms=1.0)
    analyzer.compute("isi_histograms", window_ms=50.0, bin_ms=1.0)
    # Presence ratio: SpikeInterface's 60 s bins leave it undefined on recordings under a minute.
    bin_s = float(min(60.0, max(recording.get_total_duration() / 10.0, 1.0)))
    analyzer.compute("quality_metrics", metric_names=QUALITY_METRICS, skip_pc_metrics=True,
                     metric_params={"presence_ratio": {"bin_duration_s": bin_s}})
    return analyzer


def _write_quality_metrics(metrics, path: Path) -> None:
    import pandas as pd

    if metrics is None:
        metrics = pd.DataFrame(columns=QUALITY_METRIC_COLUMNS)
    metrics = metrics.copy()
    metrics.index.name = "unit_id"
    metrics.to_csv(path)


# ---------------------------------------------------------------------------- figures


def _save(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)


def _unit_colors(sorting) -> dict:
    """One colour per unit, the same in every figure (tab10, or tab20 beyond 10 units, cycled)."""
    import matplotlib.pyplot as plt

    unit_ids = list(sorting.unit_ids)
    cmap = plt.get_cmap("tab10" if len(unit_ids) <= 10 else "tab20")
    return {unit_id: cmap(i % cmap.N) for i, unit_id in enumerate(unit_ids)}


def _pages(unit_ids, size: int = UNITS_PER_FIGURE) -> list:
    return [unit_ids[start:start + size] for start in range(0, len(unit_ids), size)]


def _grid_size(n_units: int, ncols: int, width: float, height: float) -> tuple[float, float]:
    ncols = min(ncols, n_units)
    nrows = int(np.ceil(n_units / ncols))
    return width * ncols, height * nrows


def _unit_figures(analyzer, folder: Path) -> list[Figure]:
    import spikeinterface.widgets as sw

    unit_ids = list(analyzer.unit_ids)
    colors = _unit_colors(analyzer.sorting)
    pages = _pages(unit_ids)
    figures: list[Figure] = []

    def page_name(stem: str, index: int) -> str:
        return f"{stem}.png" if len(pages) == 1 else f"{stem}_{index + 1:02d}.png"

    def page_title(title: str, units) -> str:
        return title if len(pages) == 1 else f"{title}: units {units[0]} to {units[-1]}"

    for i, units in enumerate(pages):
        ncols = min(5, len(units))
        w = sw.plot_unit_templates(analyzer, unit_ids=units, unit_colors=colors, ncols=ncols, backend="matplotlib",
                                   plot_legend=False, figsize=_grid_size(len(units), 5, 2.6, 3.2))
        name = page_name("unit_templates", i)
        _save(w.figure, folder / name)
        figures.append(Figure(name, page_title("Templates on the probe", units),
                              "Mean waveform of each unit (line) with its 1-99 and 25-75 percentile bands, drawn at "
                              "the positions of the unit's channels on the probe."))

    w = sw.plot_amplitudes(analyzer, unit_colors=colors, plot_histograms=True, max_spikes_per_unit=5000,
                           backend="matplotlib", figsize=(12, 4.5))
    _save(w.figure, folder / "amplitudes.png")
    figures.append(Figure("amplitudes.png", "Amplitudes over time",
                          "Spike amplitude (µV, on the unit's main channel) against time, and its distribution; drifting "
                          "or truncated distributions point to motion or to spikes lost under the threshold."))

    for i, units in enumerate(pages):
        w = sw.plot_isi_distribution(analyzer, unit_ids=units, window_ms=50.0, bin_ms=1.0, backend="matplotlib",
                                     ncols=min(5, len(units)), figsize=_grid_size(len(units), 5, 2.4, 1.8))
        for ax, unit_id in zip(w.axes.flatten(), units):
            ax.set_title(str(unit_id), fontsize=9)
            ax.set_ylabel("")
            ax.set_xlabel("ISI (ms)", fontsize=8)
        w.figure.tight_layout()
        name = page_name("isi_histograms", i)
        _save(w.figure, folder / name)
        figures.append(Figure(name, page_title("Inter-spike-interval histograms", units),
                              "Distribution of the intervals between consecutive spikes of each unit (0-50 ms); a "
                              "well-isolated neuron has almost none below its ~2 ms refractory period."))

    for i, units in enumerate(pages):
        w = sw.plot_autocorrelograms(analyzer, unit_ids=units, unit_colors=colors, backend="matplotlib",
                                     ncols=min(5, len(units)), figsize=_grid_size(len(units), 5, 2.4, 1.8))
        w.figure.tight_layout()
        name = page_name("autocorrelograms", i)
        _save(w.figure, folder / name)
        figures.append(Figure(name, page_title("Autocorrelograms", units),
                              "Spike-time autocorrelogram of each unit (±25 ms, 1 ms bins); a dip at zero lag shows "
                              "the refractory period."))

    w = sw.plot_unit_locations(analyzer, unit_colors=colors, with_channel_ids=False, plot_legend=len(unit_ids) <= 30,
                               backend="matplotlib", figsize=(6, 7))
    _save(w.figure, folder / "unit_locations.png")
    figures.append(Figure("unit_locations.png", "Unit locations on the probe",
                          "Each unit's position estimated by monopolar triangulation of its template, over the "
                          "probe's contacts."))
    return figures


def _read_history(path: Path) -> list[dict]:
    def number(text):
        return None if text in ("", None) else float(text)

    with open(path, newline="") as f:
        return [{key: (int(float(value)) if key in ("round", "n_clusters") else number(value))
                 for key, value in row.items()} for row in csv.DictReader(f)]


def _deepcluster_figure(sorter_output: Path, folder: Path, params: dict) -> list[Figure]:
    path = sorter_output / "deepcluster" / "deepcluster_history.csv"
    if not path.exists():
        logger.info("report: no DeepCluster history in %s; training curves skipped", path.parent)
        return []
    history = _read_history(path)
    if not history:
        return []
    plot_history(history, folder / "deepcluster_history.png", params.get("nmi_stop"))
    rounds = len(history)
    return [Figure("deepcluster_history.png", "DeepCluster training",
                   f"{rounds} round{'s' if rounds != 1 else ''}, {history[-1]['n_clusters']} k-means clusters per "
                   "round. Left: loss and accuracy of the CNN on each round's pseudo-labels (a round that "
                   "stopped the training has no point). Right: normalised mutual information between consecutive "
                   "rounds' pseudo-labels; the rounds stop when it exceeds nmi_stop or rises by less than 0.01.")]


def load_deepcluster_model(checkpoint_path: Path, n_channels: int, n_samples: int):
    """The trained ``SnippetClassifier`` of a DeepCluster checkpoint (its sizes are read off the weights)."""
    import torch

    from .models import SnippetClassifier, SnippetEncoder
    from .training import load_checkpoint

    state = load_checkpoint(checkpoint_path)
    if state is None:
        return None
    weights = state["model"]
    width = weights["encoder.features.0.0.weight"].shape[0] // 2
    embedding_dim, n_classes = weights["head.weight"].shape[1], weights["head.weight"].shape[0]
    model = SnippetClassifier(SnippetEncoder(n_channels, n_samples, embedding_dim=embedding_dim, width=width), n_classes)
    model.load_state_dict(weights)
    model.eval()
    return model.to(torch.device("cpu"))


def _embedding_figure(sorter_output: Path, folder: Path, params: dict, unit_colors: dict) -> list[Figure]:
    import matplotlib.pyplot as plt
    import torch
    from sklearn.decomposition import PCA

    from .deepcluster import embed_snippets
    from .snippets import SnippetStore

    checkpoint = sorter_output / "deepcluster" / "deepcluster_checkpoint.pt"
    labels_path = sorter_output / "peak_labels.npy"
    if not (checkpoint.exists() and labels_path.exists() and SnippetStore.is_complete(sorter_output / "snippets")):
        logger.info("report: no trained model, snippets or peak labels in %s; embedding figure skipped", sorter_output)
        return []
    store = SnippetStore.load(sorter_output / "snippets")
    model = load_deepcluster_model(checkpoint, store.n_channels, store.n_samples)
    peak_labels = np.load(labels_path)
    if model is None or len(peak_labels) != len(store) or len(store) < 3:
        return []
    rng = np.random.default_rng(params.get("seed") or 0)
    indices = np.arange(len(store))
    if len(indices) > MAX_EMBEDDED_PEAKS:
        indices = np.sort(rng.choice(indices, size=MAX_EMBEDDED_PEAKS, replace=False))
    with torch.no_grad():
        embedding = embed_snippets(model, store, indices, params.get("batch_size", 256), torch.device("cpu"))
    projected = PCA(n_components=2, random_state=0).fit_transform(embedding)
    labels = peak_labels[indices]

    fig, ax = plt.subplots(figsize=(7, 6))
    outliers = labels < 0
    if outliers.any():
        ax.scatter(*projected[outliers].T, s=4, c="lightgrey", label="outliers", rasterized=True)
    units = np.unique(labels[~outliers])
    cmap = plt.get_cmap("tab20")
    for i, unit in enumerate(units):
        color = unit_colors.get(unit, unit_colors.get(str(unit), cmap(i % 20)))
        ax.scatter(*projected[labels == unit].T, s=4, color=color, label=str(unit), rasterized=True)
    ax.set(xlabel="PC 1 of the embedding", ylabel="PC 2 of the embedding",
           title=f"Learned embedding of {len(indices)} peaks")
    if len(units) <= 30:
        ax.legend(markerscale=3, fontsize=7, ncols=2 if len(units) > 12 else 1, loc="best", title="unit")
    _save(fig, folder / "embedding.png")
    return [Figure("embedding.png", "Learned embedding",
                   f"The {model.encoder.embedding_dim}-D embedding the DeepCluster-trained CNN gives the snippets of "
                   f"{len(indices)} detected peaks{' (a random subsample)' if len(indices) < len(store) else ''}, "
                   "projected on its first two principal components, coloured by the unit each peak was given when "
                   "units were formed (before template matching and merging; grey: outliers). Units that overlap "
                   "here may still be told apart by their position on the probe.")]


# ---------------------------------------------------------------------------- page

_CHECK_IMAGES = """
<script>
// Marks the page once every figure has loaded: data-figures="ok", or "broken" with a visible list.
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); });
  document.body.dataset.figuresLoaded = String(images.length - broken.length);
  document.body.dataset.figures = broken.length === 0 ? "ok" : "broken";
  if (broken.length) {
    var note = document.getElementById("missing-figures");
    note.hidden = false;
    note.textContent = "Figures that could not be loaded (keep the PNG files beside index.html): " +
      broken.map(function (img) { return img.getAttribute("src"); }).join(", ");
  }
});
</script>
"""

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1250px;
       padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; }
th { background: #f3f3f3; } td { text-align: right; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; max-width: 60em; }
nav a { margin-right: 1em; } .meta { color: #666; } #missing-figures { color: #b00; font-weight: bold; }
"""


def _relative_link(target: Path, start: Path) -> str | None:
    try:
        return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return None


def _render_page(sorter_folder, sorter_output, report_folder, recording, sorting, metrics, figures) -> str:
    esc = html.escape
    n_spikes = int(sorting.to_spike_vector().size)
    duration = recording.get_total_duration()
    summary = [
        ("sorter folder", str(sorter_folder.resolve())),
        ("recording", f"{recording.get_num_channels()} channels, {recording.get_sampling_frequency():g} Hz, "
                      f"{duration:.1f} s in {recording.get_num_segments()} segment(s)"),
        ("units", str(len(sorting.unit_ids))),
        ("spikes", f"{n_spikes} ({n_spikes / max(duration, 1e-9):.1f} per second)"),
        ("written", f"{datetime.datetime.now():%Y-%m-%d %H:%M} by spikeinterface-deepsort {__version__}"),
    ]
    stages_path = sorter_output / "stages.json"
    stages = json.loads(stages_path.read_text()) if stages_path.exists() else {}

    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>DeepSpikeSort report: {esc(sorter_folder.name)}</title>", f"<style>{_STYLE}</style>",
        "</head>", '<body data-figures="pending">',
        f"<h1>DeepSpikeSort report</h1><p class=\"meta\">{esc(str(sorter_folder.resolve()))}</p>",
        '<p id="missing-figures" hidden></p>',
        '<nav><a href="#summary">Summary</a><a href="#metrics">Quality metrics</a>'
        + "".join(f'<a href="#{esc(_anchor(f))}">{esc(f.title)}</a>' for f in figures) + "</nav>",
        '<h2 id="summary">Summary</h2>', "<table>",
    ]
    parts += [f"<tr><th>{esc(k)}</th><td style=\"text-align:left\">{esc(v)}</td></tr>" for k, v in summary]
    parts.append("</table>")
    if stages:
        parts.append("<p>Stage durations (seconds):</p><table><tr>"
                     + "".join(f"<th>{esc(name)}</th>" for name in stages) + "</tr><tr>"
                     + "".join(f"<td>{float(sec):.1f}</td>" for sec in stages.values()) + "</tr></table>")
    links = [("quality_metrics.csv", "quality_metrics.csv")]
    log_link = _relative_link(sorter_output / "deepspikesort.log", report_folder)
    if log_link and (sorter_output / "deepspikesort.log").exists():
        links.append((log_link, "full sorting log"))
    links.append(("analyzer", "SortingAnalyzer folder (spikeinterface.load_sorting_analyzer)"))
    parts.append("<p>Files: " + ", ".join(f'<a href="{esc(href)}">{esc(text)}</a>' for href, text in links) + "</p>")

    parts.append('<h2 id="metrics">Quality metrics</h2>')
    if metrics is None or len(metrics) == 0:
        parts.append("<p>No unit was found, so there are no quality metrics and no unit figures.</p>")
    else:
        parts.append("<p>Computed by SpikeInterface: SNR (template peak over noise), ISI violations "
                     "(ratio and count of intervals under 1.5 ms), firing rate (Hz), presence ratio (fraction "
                     "of the recording in which the unit fires) and amplitude cutoff (estimated fraction of "
                     "spikes missed below the detection threshold).</p>")
        table = metrics.copy()
        table.index.name = "unit"
        parts.append(table.to_html(float_format=lambda x: f"{x:.3g}", na_rep="–", border=0))

    for figure in figures:
        parts.append(f'<h2 id="{esc(_anchor(figure))}">{esc(figure.title)}</h2>')
        parts.append(f'<figure><img src="{esc(figure.filename)}" alt="{esc(figure.title)}" loading="eager">'
                     f"<figcaption>{esc(figure.caption)}</figcaption></figure>")
    parts += [_CHECK_IMAGES, "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _anchor(figure: Figure) -> str:
    return Path(figure.filename).stem.replace("_", "-")
