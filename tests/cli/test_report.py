"""`deepspikesort report` on the session's finished sort, and its errors naming the option to fix."""

import contextlib
import functools
import http.server
import importlib.util
import io
import shutil
import threading

import pytest

from helpers import chromium, page_images
from spikeinterface_deepsort.cli.main import main

HAS_FIGPACK = importlib.util.find_spec("figpack_spike_sorting") is not None
FIGURES = {"unit_templates.png", "amplitudes.png", "isi_histograms.png", "autocorrelograms.png",
           "unit_locations.png", "deepcluster_history.png", "embedding.png"}


@pytest.fixture(scope="module")
def cli_report(sorter_folder, tmp_path_factory):
    """`deepspikesort report` into another folder, with the interactive view where figpack is installed."""
    out = tmp_path_factory.mktemp("cli") / "cli_report"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["-q", "report", str(sorter_folder), "--output", str(out)] + (["--interactive"] if HAS_FIGPACK else []))
    return out, code, printed.getvalue()


def test_report_command(cli_report):
    out, code, printed = cli_report
    assert code == 0 and str(out / "index.html") in printed
    images = page_images((out / "index.html").read_text())
    assert sorted(images) == sorted(p.name for p in out.glob("*.png"))
    assert FIGURES <= set(images)
    assert (out / "quality_metrics.csv").exists() and (out / "unit_labels.csv").exists()


def test_report_errors_name_the_fix(sorter_folder, tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "no finished deepspikesort sort" in capsys.readouterr().err
    # A sort whose recording cannot be reloaded: the message names --recording.
    folder = tmp_path / "sort"
    shutil.copytree(sorter_folder / "sorter_output" / "sorting", folder / "sorter_output" / "sorting")
    (folder / "spikeinterface_recording.json").write_text('{"warning": "not serializable"}')
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepspikesort report: error:") and "--recording PATH" in err
    assert not (folder / "report").exists()
    # --output that is a folder of the user's: refused, naming --output.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert main(["report", str(sorter_folder), "--output", str(tmp_path / "mine")]) == 2
    assert "--output refused" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(HAS_FIGPACK, reason="figpack-spike-sorting is installed: the view itself is tested")
def test_interactive_view_needs_figpack(sorter_folder, tmp_path, capsys):
    assert main(["-q", "report", str(sorter_folder), "--output", str(tmp_path / "r"), "--interactive"]) == 2
    assert "spikeinterface-deepsort[interactive]" in capsys.readouterr().err


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
            result = chromium("--dump-dom", f"http://127.0.0.1:{server.server_address[1]}/index.html", budget_ms=10000)
        finally:
            server.shutdown()
    assert "Figure ready" in result.stdout, result.stdout[-2000:]
