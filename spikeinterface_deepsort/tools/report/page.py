"""The report's HTML page: summary, a table of the units with their labels and the reason for
every missing value, the thresholds behind the labels, and the figures."""

from __future__ import annotations

import datetime
import html
import json
import os
from pathlib import Path

import numpy as np

from ...version import __version__
from .unit_figures import DPI, LABEL_COLORS
from .unit_labels import describe_limits, missing_reason

CSS_PX_PER_INCH = 96

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
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1500px;
       padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; }
th { background: #f3f3f3; } td { text-align: right; } td.text { text-align: left; }
.label { font-weight: bold; } sup a { text-decoration: none; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; max-width: 70em; } ol.notes { font-size: 0.9em; color: #444; }
nav a { margin-right: 1em; } .meta { color: #666; } #missing-figures { color: #b00; font-weight: bold; }
"""

_COLUMN_TITLES = {"num_spikes": "spikes", "snr": "SNR", "isi_violations_ratio": "ISI violations ratio",
                  "isi_violations_count": "ISI violations", "firing_rate": "firing rate (Hz)",
                  "presence_ratio": "presence ratio", "amplitude_cutoff": "amplitude cutoff"}


class _Notes:
    """Numbered footnotes, one per (metric, reason), listing the units they apply to."""

    def __init__(self, analyzer):
        self.analyzer, self.numbers, self.units = analyzer, {}, {}

    def mark(self, metric: str, unit_id) -> str:
        key = (metric, missing_reason(self.analyzer, metric, unit_id))
        number = self.numbers.setdefault(key, len(self.numbers) + 1)
        if str(unit_id) not in self.units.setdefault(key, []):  # a unit's value and its "not tested" share a note
            self.units[key].append(str(unit_id))
        return f'<sup><a href="#note-{number}">{number}</a></sup>'

    def html(self) -> str:
        if not self.numbers:
            return ""
        items = [f'<li id="note-{n}" value="{n}"><b>{html.escape(metric)}</b> (unit{"s" if len(self.units[key]) > 1 else ""} '
                 f'{html.escape(", ".join(self.units[key]))}) is undefined: {html.escape(reason)}.</li>'
                 for key, n in self.numbers.items() for metric, reason in [key]]
        return '<p>Why a value is missing ("–"):</p><ol class="notes">' + "".join(items) + "</ol>"


def _label_html(label: str) -> str:
    shown = "MUA" if label == "mua" else label
    return f'<span class="label" style="color:{LABEL_COLORS.get(label, "#222")}">{html.escape(shown)}</span>'


def _units_table(metrics, labels, notes: _Notes) -> list[str]:
    esc = html.escape
    header = "".join(f"<th>{esc(_COLUMN_TITLES.get(c, c))}</th>" for c in metrics.columns)
    rows = [f"<table><tr><th>unit</th><th>label</th><th>why (tests failed)</th><th>not tested</th>{header}</tr>"]
    for unit_id, row in metrics.iterrows():
        failed = []
        for text in labels.failures(unit_id):
            metric = text.split()[0].strip("|")
            failed.append(esc(text) + (notes.mark(metric, unit_id) if text.endswith("undefined") else ""))
        untested = [esc(m) + notes.mark(m, unit_id) for m in labels.untested(unit_id)]
        cells = []
        for column, value in row.items():
            if value is None or np.isnan(float(value)):
                cells.append(f"<td>–{notes.mark(column, unit_id)}</td>")
            else:
                cells.append(f"<td>{int(value) if column in ('num_spikes', 'isi_violations_count') else f'{value:.3g}'}</td>")
        rows.append(f"<tr><th>{esc(str(unit_id))}</th><td class=\"text\">{_label_html(labels.labels[unit_id])}</td>"
                    f"<td class=\"text\">{'; '.join(failed) or ('all passed' if labels.labels[unit_id] == 'good' else '')}</td>"
                    f"<td class=\"text\">{', '.join(untested)}</td>{''.join(cells)}</tr>")
    rows.append("</table>")
    return rows


def _thresholds_table(labels) -> list[str]:
    esc = html.escape
    meaning = {"noise": "failing any: noise", "mua": "failing any (and not noise): MUA",
               "non-somatic": "waveform shape of an axon, not a soma: non_soma"}
    rows = ["<table><tr><th>test</th><th>metric</th><th>passes when</th></tr>"]
    for section, tests in labels.thresholds.items():
        for i, (metric, limits) in enumerate(tests.items()):
            first = f'<td class="text" rowspan="{len(tests)}">{esc(section)}: {esc(meaning.get(section, ""))}</td>'
            rows.append(f"<tr>{first if i == 0 else ''}<td class=\"text\">{esc(metric)}</td>"
                        f"<td class=\"text\">{esc(describe_limits(limits))}</td></tr>")
    rows.append("</table>")
    if labels.not_computed:
        rows.append(f"<p>Thresholds left out, their metrics not computed: {esc(', '.join(labels.not_computed))}.</p>")
    return rows


def _relative_link(target: Path, start: Path) -> str | None:
    try:
        return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return None


def _summary(sorter_folder, sorter_output, report_folder, recording, sorting, labels) -> list[str]:
    esc = html.escape
    n_spikes = int(sorting.to_spike_vector().size)
    duration = recording.get_total_duration()
    rows = [
        ("sorter folder", str(sorter_folder.resolve())),
        ("recording", f"{recording.get_num_channels()} channels, {recording.get_sampling_frequency():g} Hz, "
                      f"{duration:.1f} s in {recording.get_num_segments()} segment(s)"),
        ("units", str(len(sorting.unit_ids))),
        ("spikes", f"{n_spikes} ({n_spikes / max(duration, 1e-9):.1f} per second)"),
        ("written", f"{datetime.datetime.now():%Y-%m-%d %H:%M} by spikeinterface-deepsort {__version__}"),
    ]
    if labels is not None:
        counts = {}
        for label in labels.labels.values():
            counts[label] = counts.get(label, 0) + 1
        rows.insert(3, ("unit labels", ", ".join(f"{n} {'MUA' if k == 'mua' else k}" for k, n in sorted(counts.items()))
                        + f", by {labels.source}"))
    parts = ['<h2 id="summary">Summary</h2>', "<table>"]
    parts += [f"<tr><th>{esc(k)}</th><td class=\"text\">{esc(v)}</td></tr>" for k, v in rows]
    parts.append("</table>")
    stages_path = sorter_output / "stages.json"
    stages = json.loads(stages_path.read_text()) if stages_path.exists() else {}
    if stages:
        parts.append("<p>Stage durations (seconds):</p><table><tr>"
                     + "".join(f"<th>{esc(name)}</th>" for name in stages) + "</tr><tr>"
                     + "".join(f"<td>{float(sec):.1f}</td>" for sec in stages.values()) + "</tr></table>")
    links = [("quality_metrics.csv", "quality_metrics.csv"), ("unit_labels.csv", "unit_labels.csv")]
    if (report_folder / "bombcell").is_dir():
        links.append(("bombcell/labeling_results_wide.csv", "bombcell's table of every metric"))
    log_link = _relative_link(sorter_output / "deepspikesort.log", report_folder)
    if log_link and (sorter_output / "deepspikesort.log").exists():
        links.append((log_link, "full sorting log"))
    links.append(("analyzer", "SortingAnalyzer folder (spikeinterface.load_sorting_analyzer)"))
    parts.append("<p>Files: " + ", ".join(f'<a href="{esc(h)}">{esc(t)}</a>' for h, t in links) + "</p>")
    if (report_folder / "interactive" / "index.html").exists():
        served = esc(str((report_folder / "interactive").resolve()))
        parts.append('<p id="interactive">Interactive view (figpack): <a href="interactive/index.html">interactive/</a>. '
                     "Browsers do not run it from a file: serve it with <code>python -m http.server --directory "
                     f"{served} 8000</code> and open <code>http://localhost:8000</code> (no internet needed).</p>")
    return parts


def render_page(sorter_folder, sorter_output, report_folder, recording, sorting, analyzer, metrics, labels,
                figures) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>DeepSpikeSort report: {esc(sorter_folder.name)}</title>", f"<style>{_STYLE}</style>",
        "</head>", '<body data-figures="pending">',
        f"<h1>DeepSpikeSort report</h1><p class=\"meta\">{esc(str(sorter_folder.resolve()))}</p>",
        '<p id="missing-figures" hidden></p>',
        '<nav><a href="#summary">Summary</a><a href="#units">Units</a><a href="#thresholds">Labels: thresholds</a>'
        + "".join(f'<a href="#{esc(_anchor(f))}">{esc(f.title)}</a>' for f in figures) + "</nav>",
    ]
    parts += _summary(sorter_folder, sorter_output, report_folder, recording, sorting, labels)
    parts.append('<h2 id="units">Units</h2>')
    if labels is None or len(metrics) == 0:
        parts.append("<p>No unit was found, so there are no labels, quality metrics or unit figures.</p>")
    else:
        notes = _Notes(analyzer)
        parts.append(f"<p>Labels by {esc(labels.source)}; the tests are listed under "
                     '<a href="#thresholds">thresholds</a>. Quality metrics computed by SpikeInterface: SNR '
                     "(template peak over noise), ISI violations (ratio and count of intervals under 1.5 ms), "
                     "firing rate, presence ratio (fraction of the recording in which the unit fires) and "
                     "amplitude cutoff (estimated fraction of spikes missed below the detection threshold).</p>")
        parts += _units_table(metrics, labels, notes)
        parts.append(notes.html())
        parts.append('<h2 id="thresholds">Labels: thresholds</h2>')
        parts.append("<p>A unit is noise if it fails any noise test, else MUA if it fails any MUA test, else good; "
                     "an undefined metric fails a noise test and is not tested by the others (except "
                     "sliding_rp_violation, whose undefined value fails).</p>")
        parts += _thresholds_table(labels)
    for figure in figures:
        width = f' width="{round(figure.width_px * CSS_PX_PER_INCH / DPI)}"' if figure.width_px else ""
        parts.append(f'<h2 id="{esc(_anchor(figure))}">{esc(figure.title)}</h2>')
        parts.append(f'<figure><img src="{esc(figure.filename)}" alt="{esc(figure.title)}"{width} loading="eager">'
                     f"<figcaption>{esc(figure.caption)}</figcaption></figure>")
    parts += [_CHECK_IMAGES, "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _anchor(figure) -> str:
    return Path(figure.filename).stem.replace("_", "-")
