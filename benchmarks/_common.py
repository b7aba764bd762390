"""What the benchmark scripts share: the package's names, one fresh-process runner, one memory
poller, one ground-truth summary and one results writer.

The scripts run as ``python benchmarks/<script>.py``, so ``import _common`` finds this file.
Run as a script, this file is the child of :func:`run_in_fresh_process` (not for use by hand):

    python benchmarks/_common.py --run-one SORTER RECORDING_FILE FOLDER OUT PARAMS_JSON

The package's own names (``spikeinterface_deepsort.<module>.<name>``) are written only in
``PACKAGE_NAMES`` below and imported on first use, so that a peer's fresh process (this file
run as a script) never imports the package, and a module that moves is fixed in one place.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"
WORK = BENCHMARKS / "work"
# The team's data (shared/data/README.md) sits beside the clone; DEEPSPIKESORT_SHARED names it when it does not.
SHARED = Path(os.environ.get("DEEPSPIKESORT_SHARED", BENCHMARKS.parents[1] / "shared"))
N_JOBS = 2  # the cores of the machine the committed tables were measured on
WELL_DETECTED = 0.8
MATCH_DELTA_MS = 0.4  # compare_sorter_to_ground_truth's default window, also the ceiling's

PACKAGE = "spikeinterface_deepsort"
PACKAGE_NAMES = {
    "make_serializable": "spikeinterface_deepsort.tools.datasets",
    "ground_truth_snr": "spikeinterface_deepsort.tools.scoring",
    "plot_accuracy_vs_snr": "spikeinterface_deepsort.tools.scoring",
    "summarise_comparison": "spikeinterface_deepsort.tools.scoring",
    "SORTER_PARAMS": "spikeinterface_deepsort",
    # Used by the older scripts only (reference_case, locust, features).
    "ground_truth_recording": "spikeinterface_deepsort.tools.datasets",
    "locust_tetrode": "spikeinterface_deepsort.tools.datasets",
    "for_analysis": "spikeinterface_deepsort.stages.preprocessing",
    "preprocess": "spikeinterface_deepsort.stages.preprocessing",
    "detect": "spikeinterface_deepsort.stages.detection",
    "estimate_noise_levels": "spikeinterface_deepsort.stages.detection",
    "extract_snippets": "spikeinterface_deepsort.stages.snippets",
    "embed_snippets": "spikeinterface_deepsort.stages.deepcluster",
    "embedding_noise_seed": "spikeinterface_deepsort.stages.deepcluster",
    "raw_pca_features": "spikeinterface_deepsort.stages.deepcluster",
    "run_deepcluster": "spikeinterface_deepsort.stages.deepcluster",
    "fit_units": "spikeinterface_deepsort.stages.units",
    "cpu_threads": "spikeinterface_deepsort.learning.torch_utils",
}


def _package(name: str):
    return getattr(importlib.import_module(PACKAGE_NAMES[name]), name)


def __getattr__(name: str):
    """``from _common import make_serializable`` and the like: the package's name, imported now."""
    if name in PACKAGE_NAMES:
        return _package(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_package() -> None:
    """Import the package: registers the sorter "deepspikesort" and the clustering method "deepcluster"."""
    importlib.import_module(PACKAGE)


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that produced a result, as written in its table."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", f"benchmarks/{script}", *args]).strip()


# ---------------------------------------------------------------- memory


def _pss_kib(pid: int) -> int:
    """Pss_Anon + Pss_Shmem of one process, in KiB (/proc/<pid>/smaps_rollup, Linux 4.14 and later)."""
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as lines:
        for line in lines:
            if line.startswith(("Pss_Anon:", "Pss_Shmem:")):
                total += int(line.split()[1])
    return total


def tree_memory(root: psutil.Process) -> int:
    """Physical memory the process tree holds, in bytes: the proportional set size (PSS) of every
    process's anonymous and shared memory, summed.

    PSS divides each page among the processes that map it, so the sum counts each page once: the
    shared in-memory cache once however many workers map it, and the pages a forked worker still
    shares with its parent once (RssAnon, used before session 9, counted them in full in every
    forked worker: a worker forked from a 1-GB parent added 1 GB). File-backed pages (the
    memory-mapped on-disk cache and snippets) are left out: that page cache grows with the file
    and is reclaimable by the kernel, not memory the sort holds.
    """
    total = 0
    for member in [root] + root.children(recursive=True):
        try:
            total += _pss_kib(member.pid)
        except (OSError, psutil.Error):
            pass  # a worker that exited between listing and reading
    return total * 1024


class PeakMemory:
    """Polls :func:`tree_memory` of a process and its workers (this process by default) every
    ``interval`` seconds in a background thread. After the block: ``peak_mib`` (the largest),
    ``rise_mib`` (the largest minus what was held when the block started)."""

    def __init__(self, pid: int | None = None, interval: float = 0.2):
        self.process = psutil.Process(pid)
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def __enter__(self):
        self.baseline = tree_memory(self.process)
        self.peak = self.baseline
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, tree_memory(self.process))
            except psutil.Error:
                return  # the watched process is gone
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()
        self.peak_mib = round(self.peak / 2**20)
        self.rise_mib = round(max(self.peak - self.baseline, 0) / 2**20)


# ---------------------------------------------------------------- running a sorter


def sorter_params(name: str, *, seed: int = 0, n_jobs: int = N_JOBS) -> dict:
    """Default parameters, except the cores (every sorter gets the same ``n_jobs``), the seed
    of deepspikesort and kilosort4's device (this machine has no GPU)."""
    import spikeinterface.sorters as ss

    if name == "kilosort4":
        return dict(torch_device="cpu")
    if name == "mountainsort5":
        return dict(n_jobs=n_jobs) if "n_jobs" in ss.get_default_sorter_params(name) else {}
    job_kwargs = dict(n_jobs=n_jobs, progress_bar=False)
    if name == "deepspikesort":
        return dict(seed=seed, job_kwargs=job_kwargs)
    return dict(job_kwargs=job_kwargs)


class _StageWatcher(logging.Handler):
    """Keeps the wall-clock time of deepspikesort's first 'stage ... started' log line (the end
    of start-up) and prints the stage lines as they come (the sort runs with verbose=False:
    verbose also turns on progress bars)."""

    def __init__(self):
        super().__init__()
        self.first_stage = None

    def emit(self, record):
        message = record.getMessage()
        if not message.startswith("stage "):
            return
        if self.first_stage is None and message.endswith("started"):
            self.first_stage = time.time()
        print(f"deepspikesort {message}", file=sys.stderr, flush=True)


def run_measured(name: str, recording, folder: Path, params: dict) -> dict:
    """One run_sorter call in this process: its seconds and the memory of this process tree."""
    import spikeinterface.sorters as ss

    with PeakMemory() as memory:
        t0 = time.perf_counter()
        ss.run_sorter(name, recording, folder=folder, verbose=False, remove_existing_folder=True, **params)
        seconds = time.perf_counter() - t0
    return {"run_sorter_s": seconds, "peak_mib": memory.peak_mib, "peak_rise_mib": memory.rise_mib}


def _gpu_info() -> dict:
    """GPU name, torch and peak GPU memory where this process used CUDA (torch imported by the sort)."""
    torch = sys.modules.get("torch")
    info = {"torch": getattr(torch, "__version__", None), "device_name": "CPU", "torch_cuda": None,
            "gpu_peak_allocated_mib": None, "gpu_peak_reserved_mib": None}
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        info.update(device_name=torch.cuda.get_device_name(), torch_cuda=torch.version.cuda,
                    gpu_peak_allocated_mib=round(torch.cuda.max_memory_allocated() / 2**20),
                    gpu_peak_reserved_mib=round(torch.cuda.max_memory_reserved() / 2**20))
    return info


def _child(name: str, recording_file: Path, folder: Path, out: Path, params: dict) -> None:
    """The fresh process: import only what this sorter needs, load, sort, write what only this
    process can measure to ``out``."""
    process_start = psutil.Process().create_time()
    t_script = time.time()
    # Imported here, not at the top, so that their time is measured on its own.
    import spikeinterface.core as sic
    import spikeinterface.sorters  # noqa: F401

    if name == "deepspikesort":
        register_package()
    t_imports = time.time()
    recording = sic.load(recording_file)
    t_loaded = time.time()
    watcher = _StageWatcher()
    logging.getLogger(PACKAGE).addHandler(watcher)
    result = run_measured(name, recording, folder, params)
    t_sorted = time.time()
    result |= {
        "startup": {"interpreter_s": t_script - process_start, "imports_s": t_imports - t_script,
                    "load_recording_s": t_loaded - t_imports,
                    # Only deepspikesort logs its stages: the others' set-up stays inside run_sorter_s.
                    "sorter_setup_s": (watcher.first_stage - t_loaded) if watcher.first_stage else 0.0},
        "after_sort_s": time.time() - t_sorted,
        # ru_maxrss is in KiB on Linux; RUSAGE_CHILDREN is the largest finished worker, not a sum.
        "host_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "host_maxrss_children_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    } | _gpu_info()
    out.write_text(json.dumps(result, indent=2))


def run_in_fresh_process(*, sorter: str, recording_file: Path, folder: Path, params: dict,
                         env: dict | None = None, echo: bool = False) -> dict:
    """``sorter`` with ``params`` on the recording saved in ``recording_file``, in a new Python
    process (numba compilations and torch's start included, nothing inherited from another sort).

    Returns what the child measured (run_sorter_s, peak_mib and peak_rise_mib of its process
    tree polled every 0.2 s, start-up, ru_maxrss, GPU) and ``process_s``, the process's wall
    time from start to exit, and ``folder``. The child's output goes to ``<folder>.log``, or to
    this terminal with ``echo``; its failure is raised here with the end of that output.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    out, log = folder.with_name(folder.name + ".child.json"), folder.with_name(folder.name + ".log")
    out.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--run-one", sorter, str(recording_file), str(folder),
               str(out), json.dumps(params)]
    full_env = None if env is None else os.environ | env
    t0 = time.perf_counter()
    if echo:
        returncode = subprocess.run(command, env=full_env).returncode
    else:
        with open(log, "w") as stream:
            returncode = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, env=full_env).returncode
    seconds = time.perf_counter() - t0
    if returncode != 0 or not out.exists():
        tail = "" if echo else log.read_text()[-3000:]
        print(tail, file=sys.stderr)
        last = (tail.strip().splitlines() or [f"exit code {returncode}"])[-1]
        raise RuntimeError(f"{sorter} failed in its own process: {last}")
    return json.loads(out.read_text()) | {"process_s": seconds, "folder": str(folder)}


# ---------------------------------------------------------------- scoring


def ground_truth_summary(*, gt, sorting) -> dict:
    """SpikeInterface's GroundTruthComparison (exhaustive ground truth, 0.4 ms) summarised by the
    package's own ``summarise_comparison`` (the counts every table reports), rounded for tables,
    with the units found and each ground-truth unit's accuracy."""
    from spikeinterface.comparison import GroundTruthComparison

    comparison = GroundTruthComparison(gt, sorting, exhaustive_gt=True, delta_time=MATCH_DELTA_MS)
    counts = _package("summarise_comparison")(comparison)
    accuracy = comparison.get_performance()["accuracy"].astype(float)
    return {"units": len(sorting.unit_ids), "accuracy": round(counts["mean_accuracy"], 3),
            "recall": round(counts["mean_recall"], 3), "precision": round(counts["mean_precision"], 3),
            "well_detected": counts["well_detected"], "false_positive": counts["false_positive_units"],
            "redundant": counts["redundant_units"], "unit_accuracy": [round(float(a), 4) for a in accuracy]}


def label_peaks_with_truth(peaks: np.ndarray, gt, max_lag: int) -> np.ndarray:
    """Each detected peak gets the unit of the nearest ground-truth spike within ``max_lag``
    samples, else -1; where several peaks are nearest to one true spike, only the closest keeps
    the label, so that the labelling is a perfect clustering of the detected peaks (the ceiling)."""
    spikes = gt.to_spike_vector()
    order = np.argsort(spikes["sample_index"], kind="stable")
    times, units = spikes["sample_index"][order], spikes["unit_index"][order]
    right = np.clip(np.searchsorted(times, peaks["sample_index"]), 1, len(times) - 1)
    left = right - 1
    nearest = np.where(np.abs(peaks["sample_index"] - times[left]) <= np.abs(peaks["sample_index"] - times[right]), left, right)
    labels = units[nearest].astype(np.int64)
    lag = np.abs(peaks["sample_index"] - times[nearest])
    labels[lag > max_lag] = -1
    # One peak per true spike: the closest (first on ties); the others are dropped.
    by_spike = np.lexsort((lag, nearest))
    first = np.ones(len(by_spike), dtype=bool)
    first[1:] = nearest[by_spike][1:] != nearest[by_spike][:-1]
    labels[by_spike[~first]] = -1
    return labels


def peaks_sorting(peaks: np.ndarray, labels: np.ndarray, fs: float):
    """The labelled peaks (label >= 0) as a NumpySorting, to score a clustering before matching."""
    from spikeinterface.core import NumpySorting

    keep = labels >= 0
    return NumpySorting.from_samples_and_labels([peaks["sample_index"][keep]], [labels[keep]], fs)


# ---------------------------------------------------------------- results


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table as lines."""
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def write_results(stem: str, data: dict, markdown: str, folder: Path = RESULTS) -> None:
    """``folder/<stem>.json`` and ``folder/<stem>.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    (folder / f"{stem}.md").write_text(markdown.rstrip("\n") + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-one", nargs=5, required=True,
                        metavar=("SORTER", "RECORDING_FILE", "FOLDER", "OUT", "PARAMS_JSON"))
    name, recording_file, folder, out, params = parser.parse_args(argv).run_one
    _child(name, Path(recording_file), Path(folder), Path(out), json.loads(params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
