"""The sorting report, built from a real sorter folder, and checked in a headless browser."""

import functools
import http.server
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spikeinterface_deepsort.cli.main import main
from spikeinterface_deepsort.errors import OutputFolderError
from spikeinterface_deepsort.run_folder import RunFolder
from spikeinterface_deepsort.tools.report.build import QUALITY_METRIC_COLUMNS, make_report
from spikeinterface_deepsort.tools.report.unit_figures import (
    DPI,
    amplitude_figure,
    autocorrelogram_figure,
    isi_figure,
    location_figure,
    template_figure,
    unit_colors,
)
from spikeinterface_deepsort.tools.report.training_figures import OUTLIER_COLOR, embedding_plot, training_figure

CHROMIUM = "/usr/bin/chromium"
UNIT_FIGURES = ["unit_templates.png", "amplitudes.png", "isi_histograms.png", "autocorrelograms.png",
                "unit_locations.png"]
OWN_FIGURES = ["deepcluster_history.png", "embedding.png"]
LABELS = {"good", "mua", "noise", "non_soma"}


@pytest.fixture(scope="session")
def report_folder(sorter_folder):
    """The report written by the sort itself (sorter parameter make_report=True)."""
    return sorter_folder / "report"


def _images(html_text: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html_text)


def test_report_written_by_the_sort(sorter_folder, report_folder):
    import spikeinterface.core as sic

    sorting = sic.load(sorter_folder / "sorter_output" / "sorting")
    assert len(sorting.unit_ids) > 0
    for name in ["index.html", "quality_metrics.csv", "unit_labels.csv", *UNIT_FIGURES, *OWN_FIGURES]:
        assert (report_folder / name).is_file(), name
    # The analyzer is saved with the report and reloads with SpikeInterface.
    analyzer = sic.load_sorting_analyzer(report_folder / "analyzer")
    assert list(analyzer.unit_ids) == list(sorting.unit_ids)
    for extension in ["random_spikes", "waveforms", "templates", "noise_levels", "spike_amplitudes", "unit_locations",
                      "correlograms", "isi_histograms", "quality_metrics"]:
        assert analyzer.has_extension(extension), extension
    # The pipeline logs the report as a stage of its own.
    assert "stage report: done" in (sorter_folder / "sorter_output" / "deepspikesort.log").read_text()


def test_quality_metrics_csv(sorter_folder, report_folder):
    import spikeinterface.core as sic

    metrics = pd.read_csv(report_folder / "quality_metrics.csv", index_col="unit_id")
    for column in QUALITY_METRIC_COLUMNS:
        assert column in metrics.columns, column
    sorting = sic.load(sorter_folder / "sorter_output" / "sorting")
    assert sorted(metrics.index.astype(str)) == sorted(str(u) for u in sorting.unit_ids)
    duration = 12.0
    counts = sorting.count_num_spikes_per_unit()
    for unit_id in sorting.unit_ids:
        row = metrics.loc[type(metrics.index[0])(unit_id)]
        assert row["firing_rate"] == pytest.approx(counts[unit_id] / duration, rel=1e-3)
        assert 0.0 <= row["presence_ratio"] <= 1.0  # defined even on a 12 s recording
        assert row["isi_violations_count"] >= 0
        assert row["num_spikes"] == counts[unit_id]
    assert (metrics["snr"] > 0).all()


def test_page_references_every_figure(report_folder):
    page = (report_folder / "index.html").read_text()
    images = _images(page)
    pngs = sorted(p.name for p in report_folder.glob("*.png"))
    assert sorted(images) == pngs  # every PNG is shown, every image exists
    for name in UNIT_FIGURES + OWN_FIGURES:
        assert name in images
    for name in pngs:
        data = (report_folder / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        assert len(data) > 5000, f"{name} is suspiciously small ({len(data)} bytes)"
    assert 'href="quality_metrics.csv"' in page
    assert "snr" in page and "presence_ratio" in page  # the metrics table


def test_embedding_and_training_figures_have_content(report_folder):
    import matplotlib.image as mpimg

    for name in OWN_FIGURES:
        image = mpimg.imread(report_folder / name)
        assert image.shape[0] > 200 and image.shape[1] > 300
        # Not a blank canvas: many distinct colours (points of several units, curves, axes).
        colours = {tuple(px) for px in (image[::4, ::4, :3] * 255).astype(int).reshape(-1, 3)}
        assert len(colours) > 20, name


def test_units_are_labelled_and_every_dash_explained(report_folder):
    page = (report_folder / "index.html").read_text()
    labels = pd.read_csv(report_folder / "unit_labels.csv", index_col="unit_id", keep_default_na=False)
    assert set(labels["label"]) <= LABELS and len(labels) > 0
    for unit_id, row in labels.iterrows():
        shown = "MUA" if row["label"] == "mua" else row["label"]
        assert re.search(rf"<tr><th>{unit_id}</th><td[^>]*><span[^>]*>{shown}</span>", page), unit_id
        assert bool(row["failed_tests"]) == (row["label"] != "good")  # a label other than good says why
    assert 'id="thresholds"' in page and "passes when" in page
    # Every "–" links to a note that exists, and every note is referenced.
    marks = re.findall(r'–<sup><a href="#note-(\d+)">', page)
    notes = re.findall(r'<li id="note-(\d+)"', page)
    assert set(marks) <= set(notes)
    assert set(notes) == set(re.findall(r'href="#note-(\d+)"', page))
    assert "–</td>" not in page  # no dash without its note


def test_figures_at_150_dpi_shown_at_natural_size(report_folder):
    from PIL import Image

    page = (report_folder / "index.html").read_text()
    for name, width in re.findall(r'<img src="([^"]+)" alt="[^"]*" width="(\d+)"', page):
        with Image.open(report_folder / name) as image:
            assert round(image.info["dpi"][0]) == DPI, name
            assert int(width) == round(image.width * 96 / DPI), name  # 10 pt text reads as 10 pt at 100 %
    assert len(re.findall(r"<img ", page)) == len(re.findall(r'<img [^>]*width="', page))


@pytest.fixture(scope="module")
def analyzer(report_folder):
    import spikeinterface.core as sic

    return sic.load_sorting_analyzer(report_folder / "analyzer")


def test_unit_figures_label_axes_in_physical_units(analyzer):
    import matplotlib

    matplotlib.use("Agg")
    units = list(analyzer.unit_ids)
    colors = unit_colors(units)
    labels = {u: "good" for u in units}
    templates = template_figure(analyzer, units, colors, labels)
    texts = {t.get_text() for ax in templates.axes for t in ax.texts}
    assert "1 ms" in texts and any(t.endswith(" µV") for t in texts)  # the time and voltage scale bars
    assert templates.axes[0].get_title().startswith(f"unit {units[0]} · good")
    for figure, x, y in [(templates, "(µm)", "(µm)"), (amplitude_figure(analyzer, colors), "(s)", "(µV)"),
                         (isi_figure(analyzer, units, colors, labels), "(ms)", "intervals"),
                         (autocorrelogram_figure(analyzer, units, colors, labels), "(ms)", "spike pairs"),
                         (location_figure(analyzer, analyzer.get_extension("unit_locations").get_data(), colors,
                                          labels), "(µm)", "(µm)")]:
        ax = figure.axes[0]
        assert ax.get_xlabel().endswith(x) or figure.axes[-1].get_xlabel().endswith(x), ax.get_xlabel()
        assert y in ax.get_ylabel(), ax.get_ylabel()
    # The amplitude legend sits outside the axes: it hides no spike.
    amplitudes = amplitude_figure(analyzer, colors)
    amplitudes.canvas.draw()
    legend, data = amplitudes.legends[0].get_window_extent(), amplitudes.axes[1].get_window_extent()
    assert legend.x0 >= data.x1


def test_training_figure_one_round_with_per_step_loss(sorter_folder):
    import matplotlib

    matplotlib.use("Agg")
    from spikeinterface_deepsort.learning.training import load_checkpoint

    pseudo_labels = load_checkpoint(sorter_folder / "sorter_output" / "deepcluster" / "deepcluster_checkpoint.pt")["labels"]
    history = [{"round": 1, "n_clusters": int(pseudo_labels.max()) + 1, "train_loss": 1.2, "nmi": None}]
    steps = [{"round": 1, "step": i + 1, "loss": 2.3 * np.exp(-i / 10)} for i in range(40)]
    figure = training_figure(history, steps, pseudo_labels, 0.95)
    loss, sizes = figure.axes  # no NMI panel with one round
    assert loss.get_xlabel() == "optimiser step" and "pseudo-labels" in loss.get_ylabel()
    assert len(loss.lines[0].get_xdata()) == 40
    assert sorted((p.get_height() for p in sizes.patches), reverse=True) == sorted(np.bincount(pseudo_labels),
                                                                                  reverse=True)
    assert sizes.get_ylabel() == "training peaks"


def test_embedding_tells_units_from_outliers():
    import matplotlib
    from matplotlib.colors import to_hex, to_rgb, rgb_to_hsv

    matplotlib.use("Agg")
    rng = np.random.default_rng(0)
    labels = np.repeat([-1, 0, 1, 2, 7], 200)  # 7: a unit dropped before matching
    projected = rng.normal(size=(len(labels), 2)) + labels[:, None]
    colors = unit_colors([0, 1, 2])
    figure = embedding_plot(projected, labels, colors)
    outliers, dropped, *units = figure.axes[0].collections
    assert outliers.get_zorder() < min(u.get_zorder() for u in units)
    assert outliers.get_sizes()[0] < min(u.get_sizes()[0] for u in units)
    assert to_hex(outliers.get_facecolor()[0][:3]) == OUTLIER_COLOR
    assert [t.get_text() for t in figure.axes[0].texts] == ["0", "1", "2"]  # each unit's id at its centre
    for n in (5, 12, 40):
        palette = list(unit_colors(range(n)).values())
        assert len({to_hex(c) for c in palette}) == n
        assert min(rgb_to_hsv(to_rgb(c))[1] for c in palette) > 0.3  # no grey: grey is the outliers'


HAS_FIGPACK = importlib.util.find_spec("figpack_spike_sorting") is not None


@pytest.fixture(scope="module")
def cli_report(sorter_folder, tmp_path_factory):
    """`deepspikesort report` into another folder, with the interactive view where figpack is installed."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("cli") / "cli_report"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["-q", "report", str(sorter_folder), "--output", str(out)] + (["--interactive"] if HAS_FIGPACK else []))
    return out, code, printed.getvalue()


def test_report_command(cli_report):
    out, code, printed = cli_report
    assert code == 0 and str(out / "index.html") in printed
    images = _images((out / "index.html").read_text())
    assert sorted(images) == sorted(p.name for p in out.glob("*.png"))
    assert set(UNIT_FIGURES + OWN_FIGURES) <= set(images)
    assert (out / "quality_metrics.csv").exists() and (out / "unit_labels.csv").exists()


@pytest.mark.skipif(HAS_FIGPACK, reason="figpack-spike-sorting is installed: the view itself is tested")
def test_interactive_view_needs_figpack(sorter_folder, tmp_path, capsys):
    assert main(["-q", "report", str(sorter_folder), "--output", str(tmp_path / "r"), "--interactive"]) == 2
    assert "spikeinterface-deepsort[interactive]" in capsys.readouterr().err


def test_report_errors_name_the_fix(tmp_path, capsys):
    with pytest.raises(OutputFolderError, match="no finished deepspikesort sort"):
        make_report(tmp_path)
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "spikeinterface_recording.json").write_text('{"warning": "not serializable"}')
    with pytest.raises(OutputFolderError, match="--recording"):
        RunFolder(tmp_path / "sorter_output").load_recording()


# ---------------------------------------------------------------------------- headless browser


def _chromium(*args: str, timeout: float = 90, budget_ms: int = 5000) -> subprocess.CompletedProcess:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"chromium not installed: {CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)")
    with tempfile.TemporaryDirectory() as profile:
        command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _rendered_body(page: Path) -> str:
    result = _chromium("--dump-dom", page.resolve().as_uri())
    match = re.search(r"<body[^>]*>", result.stdout)
    assert match, f"chromium rendered no page (rc {result.returncode}): {result.stderr[-2000:]}"
    return match.group(0)


def test_browser_renders_every_figure(report_folder, tmp_path):
    n_images = len(_images((report_folder / "index.html").read_text()))
    body = _rendered_body(report_folder / "index.html")
    # The page's own script marks the body once every <img> has loaded with naturalWidth > 0.
    assert 'data-figures="ok"' in body, body
    assert f'data-figures-loaded="{n_images}"' in body, body

    shot = tmp_path / "report.png"
    _chromium("--hide-scrollbars", "--window-size=1280,2400", f"--screenshot={shot}",
              (report_folder / "index.html").resolve().as_uri())
    assert shot.exists() and shot.stat().st_size > 50_000  # figures drawn, not an empty page


def test_browser_detects_a_missing_figure(report_folder, tmp_path):
    """The check is real: with one PNG gone the page says so."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in [report_folder / "index.html", *report_folder.glob("*.png")]:
        shutil.copy(path, copy / path.name)
    (copy / "embedding.png").unlink()
    body = _rendered_body(copy / "index.html")
    assert 'data-figures="broken"' in body, body


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.skipif(not HAS_FIGPACK, reason="figpack-spike-sorting is not installed (the 'interactive' extra)")
def test_interactive_view_renders_offline(cli_report):
    """figpack's page, served from 127.0.0.1 (browsers do not run its modules from file://), draws its views."""
    out, _, _ = cli_report
    assert 'href="interactive/index.html"' in (out / "index.html").read_text()
    handler = functools.partial(_QuietHandler, directory=str(out / "interactive"))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            result = _chromium("--dump-dom", f"http://127.0.0.1:{server.server_address[1]}/index.html", budget_ms=10000)
        finally:
            server.shutdown()
    assert "Figure ready" in result.stdout, result.stdout[-2000:]


def test_a_report_never_replaces_a_users_folder(tmp_path):
    """--output of `deepspikesort report` may name any folder: one that is not a report of ours is refused whole."""
    from spikeinterface_deepsort.errors import OutputFolderError
    from spikeinterface_deepsort.tools.report.build import _clear_report_folder

    mine = tmp_path / "figures"
    mine.mkdir()
    (mine / "amplitudes.png").write_bytes(b"my own figure")
    with pytest.raises(OutputFolderError, match="did not write"):
        _clear_report_folder(mine)
    assert (mine / "amplitudes.png").read_bytes() == b"my own figure"
    _clear_report_folder(tmp_path / "report")
    (tmp_path / "report" / "index.html").write_text("an earlier report")
    _clear_report_folder(tmp_path / "report")  # ours: replaced
    assert [p.name for p in (tmp_path / "report").iterdir()] == ["deepspikesort_folder.json"]
