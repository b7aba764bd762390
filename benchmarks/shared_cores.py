"""The reference case alone and beside competing CPU-bound processes (issue 18, item 5).

Each sort runs in its own fresh Python process with default parameters (_common's runner),
first alone, then while ``--busy`` processes (``while True: pass``, normal priority) keep
every core busy. deepspikesort runs with the package's OpenMP wait policy (PASSIVE, set when
it is imported) and, to show what it replaced, with ``OMP_WAIT_POLICY=ACTIVE`` (libgomp's
spin-waiting default); spykingcircus2 is the peer. Seconds per stage come from deepspikesort's
``stages.json``.

    python benchmarks/shared_cores.py [--busy 2] [--sorters deepspikesort spykingcircus2]

Writes benchmarks/results/shared_cores.md and shared_cores.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import _common
from _common import run_in_fresh_process, sorter_params

WORK = _common.WORK / "shared_cores"


@contextmanager
def busy_cores(count: int):
    """``count`` CPU-bound processes at normal priority for the duration of the block."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def run(name: str, recording_file: Path, label: str, busy: int, policy: str | None) -> dict:
    folder = WORK / label
    # OMP_WAIT_POLICY for the sort's process only (None: the package's own, set when it is imported).
    env = None if policy is None else {"OMP_WAIT_POLICY": policy}
    with busy_cores(busy):
        seconds = run_in_fresh_process(sorter=name, recording_file=recording_file, folder=folder,
                                       params=sorter_params(name), env=env)["run_sorter_s"]
    stages_path = folder / "sorter_output" / "stages.json"
    stages = json.loads(stages_path.read_text()) if name == "deepspikesort" else {}
    print(f"[shared_cores] {label}: {seconds:.1f} s {stages}", flush=True)
    return {"sorter": name, "busy": busy, "wait_policy": policy or "package default", "seconds": round(seconds, 1),
            "stages": stages}


def to_markdown(rows: dict, command: str, busy: int) -> str:
    lines = [f"Command: `{command}`", "",
             f"| run | alone (s) | beside {busy} busy processes (s) | ratio |", "|---|---|---|---|"]
    for key in dict.fromkeys(label.rsplit("_", 1)[0] for label in rows):
        alone, loaded = rows[f"{key}_alone"], rows[f"{key}_busy"]
        lines.append(f"| {key} | {alone['seconds']} | {loaded['seconds']} | {loaded['seconds'] / alone['seconds']:.2f} |")
        for stage, seconds in alone["stages"].items():
            other = loaded["stages"].get(stage, float("nan"))
            lines.append(f"| &nbsp;&nbsp;{stage} | {seconds} | {other} | {other / max(seconds, 1e-3):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=os.cpu_count(), help="competing processes (default: one per core)")
    parser.add_argument("--sorters", nargs="+", default=["deepspikesort", "spykingcircus2"])
    args = parser.parse_args(argv)
    shutil.rmtree(WORK, ignore_errors=True)  # this script's own scratch folder
    WORK.mkdir(parents=True)
    recording, _ = _common.ground_truth_recording(folder=WORK / "ground_truth")  # the reference case
    recording_file = WORK / "recording.json"
    recording.dump(recording_file)
    variants = [(name, None) for name in args.sorters]
    if "deepspikesort" in args.sorters:
        variants.append(("deepspikesort", "ACTIVE"))
    rows = {}
    for name, policy in variants:
        key = name if policy is None else f"{name} OMP_WAIT_POLICY={policy}"
        for busy, when in ((0, "alone"), (args.busy, "busy")):
            rows[f"{key}_{when}"] = run(name, recording_file, f"{key}_{when}".replace(" ", "_"), busy, policy)
    command = _common.command_line("shared_cores.py", argv)
    table = to_markdown(rows, command, args.busy)
    _common.write_results("shared_cores", rows, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
