"""The sorting report, built from a real sorter folder, and checked in a headless browser."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from spikeinterface_deepsort.cli import main
from spikeinterface_deepsort.errors import OutputFolderError
from spikeinterface_deepsort.report import QUALITY_METRIC_COLUMNS, _reload_recording, make_report

CHROMIUM = "/usr/bin/chromium"
UNIT_FIGURES = ["unit_templates.png", "amplitudes.png", "isi_histograms.png", "autocorrelograms.png",
                "unit_locations.png"]
OWN_FIGURES = ["deepcluster_history.png", "embedding.png"]


def build_sorter_folder(tmp_path_factory) -> Path:
    """One real sort per test session (shared by test_report.py and test_handoff.py through the session's
    temporary folder): 8 channels, 5 units, 12 s, fast DeepCluster settings, report written at the end."""
    import spikeinterface.sorters as ss

    from spikeinterface_deepsort.datasets import ground_truth_recording

    base = tmp_path_factory.getbasetemp() / "shared_deepspikesort_sort"
    folder = base / "sort"
    if (folder / "sorter_output" / "sorting").exists() and (folder / "report" / "index.html").exists():
        return folder
    shutil.rmtree(base, ignore_errors=True)
    recording, _ = ground_truth_recording(8, 5, 12.0, seed=7, folder=base / "gt")
    ss.run_sorter("deepspikesort", recording, folder=folder, verbose=False, max_rounds=2, steps_per_round=20,
                  merge_max_template_diff=0.0, make_report=True, seed=1,
                  job_kwargs=dict(n_jobs=1, progress_bar=False))
    return folder


@pytest.fixture(scope="session")
def sorter_folder(tmp_path_factory):
    return build_sorter_folder(tmp_path_factory)


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
    for name in ["index.html", "quality_metrics.csv", *UNIT_FIGURES, *OWN_FIGURES]:
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


def test_report_command(sorter_folder, tmp_path, capsys):
    out = tmp_path / "cli_report"
    assert main(["-q", "report", str(sorter_folder), "--output", str(out)]) == 0
    assert str(out / "index.html") in capsys.readouterr().out
    images = _images((out / "index.html").read_text())
    assert sorted(images) == sorted(p.name for p in out.glob("*.png"))
    assert set(UNIT_FIGURES + OWN_FIGURES) <= set(images)
    assert (out / "quality_metrics.csv").exists()


def test_report_errors_name_the_fix(tmp_path, capsys):
    with pytest.raises(OutputFolderError, match="no finished deepspikesort sort"):
        make_report(tmp_path)
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "spikeinterface_recording.json").write_text('{"warning": "not serializable"}')
    with pytest.raises(OutputFolderError, match="--recording"):
        _reload_recording(tmp_path)


# ---------------------------------------------------------------------------- headless browser


def _chromium(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"chromium not installed: {CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)")
    with tempfile.TemporaryDirectory() as profile:
        command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args]
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
