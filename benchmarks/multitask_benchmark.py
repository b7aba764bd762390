"""Default multi-task benchmark: synthetic files, all six models, 5 folds, default trial budget.

Run from the repository root:

    python benchmarks/multitask_benchmark.py

It writes the synthetic CSV files and a fresh Optuna study under ``benchmarks/work/``
(ignored by git), the results under ``benchmarks/results/multitask/`` and, there,
``README.md`` with the summary tables, the exact command and its wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work" / "multitask"
RESULTS = ROOT / "benchmarks" / "results" / "multitask"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="further options for 'deepspikesort multitask'")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)  # a fresh study: a resumed one would time nothing
    shutil.rmtree(RESULTS, ignore_errors=True)
    data = WORK / "data"
    subprocess.run(["deepspikesort", "make-csv-datasets", str(data)], check=True, cwd=ROOT)
    command = [
        "deepspikesort", "multitask", "--data", str(data.relative_to(ROOT)), "--output", str(RESULTS.relative_to(ROOT)),
        "--storage", f"sqlite:///{(WORK / 'optuna.db').relative_to(ROOT)}", *args.extra,
    ]
    load_before = os.getloadavg()
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    summary = (RESULTS / "summary.md").read_text()
    report = f"""# Multi-task benchmark (synthetic A2, A3, A4, A12, A21)

Command (from the repository root, after `deepspikesort make-csv-datasets {data.relative_to(ROOT)}`):

    {" ".join(command)}

Wall time: **{wall:.0f} s** ({wall / 60:.1f} min) on {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}),
Python {platform.python_version()}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after
(other jobs shared the cores, so this is an upper bound).

Scores on the test folds, mean ± std over the 5 folds; the chosen configurations are in
`<model>/best.csv`. Plot: `summary.png`.

{summary}"""
    (RESULTS / "README.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
