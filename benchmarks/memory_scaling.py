"""Peak memory against recording length: 1, 5 and 20 minutes of a 64-channel recording.

Each sort runs in its own process (``deepspikesort sort``); the peak memory of that
process and all its workers (private anonymous memory summed, shared memory once: see
``tree_memory``; polled every 0.2 s) and the wall time are recorded. The bound the sorter must meet: the 20-minute peak is at most 1.3x the
1-minute one.

    python benchmarks/memory_scaling.py [--minutes 1 5 20] [--channels 64] [--n-jobs 2]

Writes benchmarks/results/memory_scaling.json and .md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).parent / "results"
WORK = Path(__file__).parent / "work" / "memory_scaling"


def make_recording(minutes: float, channels: int, folder: Path) -> Path:
    """A lazily generated ground-truth recording (traces computed on the fly), dumped as JSON."""
    from spikeinterface_deepsort.tools.datasets import ground_truth_recording

    recording, _ = ground_truth_recording(num_channels=channels, num_units=channels // 2, duration=60.0 * minutes,
                                          seed=5, folder=folder / "ground_truth")
    path = folder / "recording.json"
    recording.dump_to_json(path)
    return path


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def tree_memory(root: psutil.Process) -> int:
    """Memory the sort really holds, in bytes: every process's private anonymous memory, plus
    shared memory (SpikeInterface's in-memory cache) counted once.

    Plain RSS would count the shared cache once per worker, and would include the page cache
    of memory-mapped files (the on-disk cache, the snippets), which grows with the file but
    is reclaimable by the kernel, not memory the sort holds.
    """
    anonymous, shared = 0, 0
    for member in [root] + root.children(recursive=True):
        try:
            anonymous += _status_kib(member.pid, "RssAnon")
            shared = max(shared, _status_kib(member.pid, "RssShmem"))
        except (OSError, psutil.Error):
            pass
    return (anonymous + shared) * 1024


def peak_tree_memory(process: subprocess.Popen, interval: float = 0.2) -> int:
    """Largest :func:`tree_memory` of ``process`` while it runs, in bytes."""
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_memory(root))
        time.sleep(interval)
    return peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 20])
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    shutil.rmtree(WORK, ignore_errors=True)
    rows = []
    for minutes in args.minutes:
        folder = WORK / f"{minutes:g}min"
        folder.mkdir(parents=True)
        recording = make_recording(minutes, args.channels, folder)
        command = [sys.executable, "-m", "spikeinterface_deepsort.cli", "-q", "sort", str(recording),
                   "--output", str(folder / "sorted"),
                   "--param", f"job_kwargs={{'n_jobs': {args.n_jobs}, 'progress_bar': False}}"]
        t0 = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = peak_tree_memory(process)
        _, err = process.communicate()
        seconds = time.perf_counter() - t0
        if process.returncode != 0:
            print(err[-3000:], file=sys.stderr)
            return 1
        stages = json.loads((folder / "sorted" / "sorter_output" / "stages.json").read_text())
        rows.append({"minutes": minutes, "peak_mib": round(peak / 2**20), "seconds": round(seconds, 1),
                     "stages": stages})
        print(rows[-1], flush=True)
        write_results(rows, args, "python benchmarks/memory_scaling.py " + " ".join(sys.argv[1:] if argv is None else argv))
    return 0


def write_results(rows: list[dict], args, command: str) -> None:
    """Table and JSON, rewritten after every recording so that a stopped run keeps what it measured."""
    base = rows[0]["peak_mib"]
    lines = [f"# Peak memory against recording length ({args.channels} channels, n_jobs={args.n_jobs})", "",
             f"Command: `{command.strip()}`", "",
             "| recording | peak memory (MiB: anonymous memory of the process tree + shared once) | ratio to the first | wall s |",
             "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['minutes']:g} min | {row['peak_mib']} | {row['peak_mib'] / base:.2f} | {row['seconds']} |")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "memory_scaling.md").write_text(text + "\n")
    (RESULTS / "memory_scaling.json").write_text(json.dumps({"command": command.strip(), "rows": rows}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
