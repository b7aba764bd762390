"""Peak memory against recording length: 1, 5 and 20 minutes of a 64-channel recording.

Each sort runs in its own fresh process (``_common.run_in_fresh_process``, default parameters
but ``n_jobs``); the peak memory of that process and all its workers (proportional set size of
anonymous and shared memory, summed: see ``_common.tree_memory``; polled every 0.2 s) and the process's
wall time are recorded. The bound the sorter must meet: the 20-minute peak is at most 1.3x the
1-minute one.

    python benchmarks/memory_scaling.py [--minutes 1 5 20] [--channels 64] [--n-jobs 2]

Writes benchmarks/results/memory_scaling.json and .md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import _common
from _common import run_in_fresh_process, sorter_params

WORK = _common.WORK / "memory_scaling"


def make_recording(minutes: float, channels: int, folder: Path) -> Path:
    """A lazily generated ground-truth recording (traces computed on the fly), dumped as JSON."""
    recording, _ = _common.ground_truth_recording(num_channels=channels, num_units=channels // 2,
                                                  duration=60.0 * minutes, seed=5, folder=folder / "ground_truth")
    path = folder / "recording.json"
    recording.dump_to_json(path)
    return path


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
        try:
            run = run_in_fresh_process(sorter="deepspikesort", recording_file=recording, folder=folder / "sorted",
                                       params=sorter_params("deepspikesort", n_jobs=args.n_jobs))
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 1
        stages = json.loads((folder / "sorted" / "sorter_output" / "stages.json").read_text())
        rows.append({"minutes": minutes, "peak_mib": run["peak_mib"], "seconds": round(run["process_s"], 1),
                     "stages": stages})
        print(rows[-1], flush=True)
        write_tables(rows, args, _common.command_line("memory_scaling.py", argv))
    return 0


def write_tables(rows: list[dict], args, command: str) -> None:
    """Table and JSON, rewritten after every recording so that a stopped run keeps what it measured."""
    base = rows[0]["peak_mib"]
    lines = [f"# Peak memory against recording length ({args.channels} channels, n_jobs={args.n_jobs})", "",
             f"Command: `{command}`", "",
             "| recording | peak memory (MiB: anonymous memory of the process tree + shared once) | ratio to the first | wall s |",
             "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['minutes']:g} min | {row['peak_mib']} | {row['peak_mib'] / base:.2f} | {row['seconds']} |")
    text = "\n".join(lines)
    print(text)
    _common.write_results("memory_scaling", {"command": command, "rows": rows}, text)


if __name__ == "__main__":
    sys.exit(main())
