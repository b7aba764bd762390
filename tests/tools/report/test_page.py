"""The report's HTML page (render_page): figures, units table, notes, natural size, and its own
figure check run in a headless browser. The page is the one the session's sort wrote."""

import re
import shutil
from pathlib import Path

import pandas as pd

from helpers import chromium, page_images
from spikeinterface_deepsort.tools.report.unit_figures import DPI

UNIT_FIGURES = ["unit_templates.png", "amplitudes.png", "isi_histograms.png", "autocorrelograms.png",
                "unit_locations.png"]
OWN_FIGURES = ["deepcluster_history.png", "embedding.png"]


def test_page_references_every_figure(report_folder):
    page = (report_folder / "index.html").read_text()
    images = page_images(page)
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


def test_units_are_labelled_and_every_dash_explained(report_folder):
    page = (report_folder / "index.html").read_text()
    labels = pd.read_csv(report_folder / "unit_labels.csv", index_col="unit_id", keep_default_na=False)
    assert set(labels["label"]) <= {"good", "mua", "noise", "non_soma"} and len(labels) > 0
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


# ---------------------------------------------------------------------------- headless browser


def _rendered_body(page: Path) -> str:
    result = chromium("--dump-dom", page.resolve().as_uri())
    match = re.search(r"<body[^>]*>", result.stdout)
    assert match, f"chromium rendered no page (rc {result.returncode}): {result.stderr[-2000:]}"
    return match.group(0)


def test_browser_renders_every_figure(report_folder, tmp_path):
    n_images = len(page_images((report_folder / "index.html").read_text()))
    body = _rendered_body(report_folder / "index.html")
    # The page's own script marks the body once every <img> has loaded with naturalWidth > 0.
    assert 'data-figures="ok"' in body, body
    assert f'data-figures-loaded="{n_images}"' in body, body

    shot = tmp_path / "report.png"
    chromium("--hide-scrollbars", "--window-size=1280,2400", f"--screenshot={shot}",
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
