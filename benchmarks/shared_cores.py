"""The reference case alone and beside competing CPU-bound processes (issue 18, item 5).

Each sort runs in its own fresh Python process with default parameters (peers.py's runner),
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

sys.path.insert(0, str(Path(__file__).parent))
from peers import make_case, run_in_fresh_process  # noqa: E402

RESULTS = Path(__file__).parent / "results"
WORK = Path(__file__).parent / "work" / "shared_cores"


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


@contextmanager
def wait_policy(policy: str | None):
    """OMP_WAIT_POLICY for the child processes started in the block (None: the package's own)."""
    before = os.environ.get("OMP_WAIT_POLICY")
    if policy is not None:
        os.environ["OMP_WAIT_POLICY"] = policy
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMP_WAIT_POLICY", None)
        else:
            os.environ["OMP_WAIT_POLICY"] = before


def run(name: str, recording_file: Path, label: str, busy: int, policy: str | None) -> dict:
    folder = WORK / label
    with wait_policy(policy), busy_cores(busy):
        seconds, peak_mib = run_in_fresh_process(name, recording_file, folder)
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
    recording, _ = make_case("reference32", WORK)
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
    command = "python benchmarks/shared_cores.py " + " ".join(sys.argv[1:])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "shared_cores.json").write_text(json.dumps(rows, indent=2))
    table = to_markdown(rows, command.strip(), args.busy)
    (RESULTS / "shared_cores.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
