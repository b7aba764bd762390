"""The documentation: the parameter reference comes from the schema, and the site builds with warnings as errors."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spikeinterface_deepsort.params import SORTER_PARAMS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_parameters", DOCS / "gen_parameters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, timeout=300)


def test_parameter_reference_is_generated_from_the_schema():
    committed = (DOCS / "parameters.md").read_text(encoding="utf8")
    assert committed == _generator().generate(), "docs/parameters.md is stale: run python docs/gen_parameters.py"
    for name, param in SORTER_PARAMS.params.items():
        assert f"| `{name}` | `{param.default!r}` |" in committed, name
        assert param.description in committed


def test_readme_parameter_table_is_generated_from_the_schema():
    generator = _generator()
    readme = generator.README.read_text(encoding="utf8")
    assert readme == generator.readme_with_table(readme), "README.md's table is stale: run python docs/gen_parameters.py"
    assert SORTER_PARAMS.markdown_table() in readme


def test_parameter_table_keeps_four_columns():
    """A type such as ``int | float`` must not split its cell into two columns."""
    table = [line for line in _generator().generate().splitlines() if line.startswith("| `")]
    assert len(table) == len(SORTER_PARAMS.params)
    for line in table:
        cells = line.replace("\\|", "").strip("|").split("|")
        assert len(cells) == 4, line


def test_figures_are_committed():
    for name in ["deepcluster_history.png", "deepcluster_embedding.png", "report_unit_templates.png"]:
        path = DOCS / "figures" / name
        assert path.is_file() and path.stat().st_size > 5000, name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    result = _mkdocs_build(ROOT / "mkdocs.yml", site)
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ["installation", "quickstart", "tutorial", "deepcluster", "parameters", "gpu_and_clusters",
                 "phase1", "multitask", "benchmarks", "reliability"]:
        assert (site / page / "index.html").is_file(), page
    parameters = (site / "parameters" / "index.html").read_text(encoding="utf8")
    for name in SORTER_PARAMS.params:
        assert f"<code>{name}</code>" in parameters, name
    assert "<td>int | float</td>" in parameters  # the escaped pipe renders as a pipe, in one cell
    deepcluster = (site / "deepcluster" / "index.html").read_text(encoding="utf8")
    assert 'src="../figures/deepcluster_history.png"' in deepcluster
    assert (site / "figures" / "deepcluster_embedding.png").is_file()
    benchmarks = (site / "benchmarks" / "index.html").read_text(encoding="utf8")
    if (ROOT / "benchmarks" / "results" / "reference_case.md").exists():
        assert "deepspikesort" in benchmarks and "<table>" in benchmarks  # the results table is included
    assert not (site / "hooks.py").exists() and not (site / "gen_parameters.py").exists()
    gpu = (site / "gpu_and_clusters" / "index.html").read_text(encoding="utf8")
    assert "torchrun --nproc_per_node=4 -m spikeinterface_deepsort.cli.torchrun" in gpu


def test_mkdocs_build_refuses_a_stale_parameter_page(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "parameters.md"
    page.write_text(page.read_text(encoding="utf8").replace("Bandpass low cut-off", "Hand-edited"), encoding="utf8")
    result = _mkdocs_build(copy / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "gen_parameters.py" in result.stdout + result.stderr
