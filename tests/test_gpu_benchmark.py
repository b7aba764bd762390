"""benchmarks/gpu.py on its CPU path: the script the GPU machine will run, run here as a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "gpu.py"
STAGES = ["preprocessing", "detection", "snippets", "deepcluster", "units", "curation", "templates", "matching"]


def run_script(tmp_path: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """The script with its results and scratch data in tmp_path: never the committed results, and
    never benchmarks/work/gpu, which a run of the script by hand may be using at the same time."""
    places = ["--results", str(tmp_path / "results"), "--work", str(tmp_path / "work")]
    return subprocess.run([sys.executable, str(SCRIPT), *args, *places], capture_output=True, text=True,
                          timeout=timeout)


def check_results(results: Path, channels: int, units: int) -> dict:
    markdown = (results / "gpu.md").read_text()
    result = json.loads((results / "gpu.json").read_text())
    assert markdown.splitlines()[2].startswith("Command: `python benchmarks/gpu.py --minutes 1 --device cpu")
    for stage in STAGES:
        assert f"| {stage} | " in markdown and stage in result["stages_s"]
    assert result["device_name"] == "CPU" and "deepspikesort on CPU" in markdown
    assert result["memory"]["gpu_peak_allocated_mib"] is None and "max_memory_allocated`, MiB) | - |" in markdown
    assert result["memory"]["host_maxrss_mib"] > 0
    assert result["recording"]["channels"] == channels and result["accuracy"]["num_gt_units"] == units
    assert 0.0 <= result["accuracy"]["mean_accuracy"] <= 1.0 and "| mean accuracy | " in markdown
    assert f"/{units} |" in markdown  # well detected, out of the ground-truth units
    # The rows (start-up, stages, after the last stage) add up to the end-to-end time.
    assert sum(seconds for _, seconds in result["rows"]) == pytest.approx(result["end_to_end_s"], abs=0.05)
    assert result["n_jobs"] >= 1 and "all CPUs of the machine" in markdown
    return result


def test_gpu_benchmark_cpu_path_writes_the_table(tmp_path):
    done = run_script(tmp_path, "--minutes", "1", "--device", "cpu", "--channels", "32", "--units", "8", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    check_results(tmp_path / "results", channels=32, units=8)
    assert "| preprocessing | " in done.stdout  # the table is printed too


def test_gpu_benchmark_refuses_what_it_cannot_use_before_generating(tmp_path):
    # cuda:99 exists on no machine; with no GPU the message says that PyTorch sees none.
    for device, message in [("cuda:99", "CUDA GPU"), ("tpu", "cpu, cuda or cuda:N")]:
        done = run_script(tmp_path, "--device", device, timeout=120)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert "generating" not in done.stdout
    # A scratch folder holding someone else's files is refused, not cleared.
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "data.bin").write_bytes(b"keep")
    done = run_script(tmp_path, "--device", "cpu", timeout=120)
    assert done.returncode == 2 and "--work" in done.stderr, done.stderr
    assert (tmp_path / "work" / "data.bin").read_bytes() == b"keep"
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_gpu_benchmark_cpu_one_minute_384_channels(tmp_path):
    """Exactly the CPU command the issue names (384 channels, 100 units), results kept out of the repository."""
    done = run_script(tmp_path, "--minutes", "1", "--device", "cpu", timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    check_results(tmp_path / "results", channels=384, units=100)
