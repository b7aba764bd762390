"""deepspikesort beside every installed peer, on generated ground-truth recordings.

Every sorter runs on every case, each in its own fresh Python process by default
(``--process fresh``: what a script calling ``run_sorter`` once sees, numba compilations and
torch's start included, and no sorter inherits what another compiled or allocated), or all
in this process (``--process same``). Wall times compare within a case. Each sorter's peak
memory is the largest memory of the process running it and its workers (anonymous memory
summed, shared memory once; see memory_scaling.tree_memory), polled every 0.2 s while it
runs, minus what was held before it started. Sorters that are not installed are skipped
with a note. Scoring: compare_sorter_to_ground_truth
with exhaustive_gt=True.

Cases:
  reference32   REFERENCE §4: 32 channels, 20 units, 60 s, seed 42
  tetrode       4 channels (SpikeInterface's generated 2x2 probe), 6 units, 60 s
  dense64       64 channels, 48 units placed closer, noise level 8 instead of 5, 60 s
  np128drift    Neuropixels 1.0 (first 128 contacts, built offline), 60 units, 120 s, zigzag drift from 60 s

    python benchmarks/peers.py [--cases reference32 tetrode dense64 np128drift] [--sorters ...]
                               [--process fresh|same] [--append]

Writes benchmarks/results/peers.md, peers.json and peers_<case>.png (accuracy per unit against SNR).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import psutil
import spikeinterface.core as sic
import spikeinterface.sorters as ss
from spikeinterface.comparison import compare_sorter_to_ground_truth

import spikeinterface_deepsort  # noqa: F401
from spikeinterface_deepsort.tools.datasets import make_serializable
from spikeinterface_deepsort.tools.scoring import ground_truth_snr, plot_accuracy_vs_snr

sys.path.insert(0, str(Path(__file__).parent))
from memory_scaling import tree_memory  # noqa: E402

RESULTS = Path(__file__).parent / "results"
WORK = Path(__file__).parent / "work" / "peers"
SORTERS = ["deepspikesort", "tridesclous2", "spykingcircus2", "lupin", "mountainsort5", "kilosort4"]
N_JOBS = 2


def make_case(name: str, folder: Path):
    if name == "reference32":
        rec, gt = sic.generate_ground_truth_recording(durations=[60.0], sampling_frequency=30000.0, num_channels=32,
                                                      num_units=20, seed=42)
    elif name == "tetrode":
        rec, gt = sic.generate_ground_truth_recording(durations=[60.0], sampling_frequency=30000.0, num_channels=4,
                                                      num_units=6, seed=2205)
    elif name == "dense64":
        rec, gt = sic.generate_ground_truth_recording(
            durations=[60.0], sampling_frequency=30000.0, num_channels=64, num_units=48, seed=64,
            noise_kwargs=dict(noise_levels=8.0, strategy="on_the_fly"),
            generate_unit_locations_kwargs=dict(margin_um=10.0, minimum_z=5.0, maximum_z=40.0, minimum_distance=12.0),
        )
    elif name == "np128drift":
        from probeinterface.neuropixels_tools import build_neuropixels_probe
        from spikeinterface.generation import generate_drifting_recording

        probe = build_neuropixels_probe("NP1000").get_slice(np.arange(128))
        probe.set_device_channel_indices(np.arange(128))
        _, rec, gt = generate_drifting_recording(num_units=60, duration=120.0, probe=probe, seed=3)
    else:
        raise ValueError(f"unknown case {name}")
    return make_serializable(rec, gt, folder / "ground_truth")


def sorter_params(name: str) -> dict:
    if name == "kilosort4":
        return dict(torch_device="cpu")
    if name == "mountainsort5":
        return dict(n_jobs=N_JOBS) if "n_jobs" in ss.get_default_sorter_params(name) else {}
    if name == "deepspikesort":
        return dict(seed=0, job_kwargs=dict(n_jobs=N_JOBS, progress_bar=False))
    return dict(job_kwargs=dict(n_jobs=N_JOBS, progress_bar=False))


class PeakMemory:
    """Polls :func:`memory_scaling.tree_memory` of this process and its workers in a background thread."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self.process = psutil.Process()

    def __enter__(self):
        self.baseline = tree_memory(self.process)
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_memory(self.process))
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()
        self.peak_mib = round(max(self.peak - self.baseline, 0) / 2**20)


def run_measured(name: str, recording, folder: Path) -> tuple[float, int]:
    """(wall seconds, peak MiB) of one run_sorter call in this process."""
    with PeakMemory() as memory:
        t0 = time.perf_counter()
        ss.run_sorter(name, recording, folder=folder, verbose=False, **sorter_params(name))
        seconds = time.perf_counter() - t0
    return seconds, memory.peak_mib


def run_in_fresh_process(name: str, recording_file: Path, folder: Path) -> tuple[float, int]:
    """run_measured in a new Python process; its error, if any, is raised here."""
    done = subprocess.run([sys.executable, __file__, "--run-one", name, str(recording_file), str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise RuntimeError(f"{name} failed in its own process: {last}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["seconds"], result["peak_mib"]


def run_case(case: str, sorters: list[str], process: str = "fresh") -> dict:
    folder = WORK / case
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    recording, gt = make_case(case, folder)
    # The file the fresh processes load the recording from (the drifting generator only pickles).
    recording_file = folder / ("recording.json" if recording.check_serializability("json") else "recording.pkl")
    recording.dump(recording_file)
    snr = ground_truth_snr(recording, gt)
    installed = set(ss.installed_sorters())
    rows, accuracies, notes = {}, {}, []
    for name in sorters:
        if name not in installed:
            notes.append(f"{name}: not installed, skipped")
            continue
        print(f"[{case}] {name} ...", flush=True)
        try:
            if process == "fresh":
                seconds, peak_mib = run_in_fresh_process(name, recording_file, folder / name)
            else:
                seconds, peak_mib = run_measured(name, recording, folder / name)
            sorting = ss.read_sorter_folder(folder / name)
        except Exception as error:  # a peer that fails on a case is reported, not fatal
            notes.append(f"{name}: failed ({type(error).__name__}: {str(error).splitlines()[0][:150]})")
            traceback.print_exc()
            continue
        comparison = compare_sorter_to_ground_truth(gt, sorting, exhaustive_gt=True)
        perf = comparison.get_performance()
        accuracies[name] = perf["accuracy"].astype(float).to_numpy()
        rows[name] = {
            "process": process, "seconds": round(seconds, 1), "peak_mib": peak_mib, "units": len(sorting.unit_ids),
            "accuracy": round(float(perf["accuracy"].mean()), 3), "recall": round(float(perf["recall"].mean()), 3),
            "precision": round(float(perf["precision"].mean()), 3),
            "well_detected": int((perf["accuracy"] > 0.8).sum()),
            "false_positive": int(comparison.count_false_positive_units()),
            "redundant": int(comparison.count_redundant_units()),
            "unit_accuracy": [round(float(a), 4) for a in accuracies[name]],
        }
        print(f"[{case}] {name}: {rows[name]}", flush=True)
    return {"num_gt_units": len(gt.unit_ids), "num_channels": recording.get_num_channels(),
            "duration_s": recording.get_total_duration(), "rows": rows, "notes": notes,
            "snr": [round(float(x), 3) for x in snr]}


def plot_case(case: str, result: dict) -> None:
    """Accuracy per unit against SNR for every row that kept its per-unit accuracies (merged runs included)."""
    accuracies = {name: np.asarray(row["unit_accuracy"]) for name, row in result["rows"].items() if "unit_accuracy" in row}
    if accuracies and "snr" in result:
        plot_accuracy_vs_snr(accuracies, np.asarray(result["snr"]), RESULTS / f"peers_{case}.png")


def to_markdown(results: dict, commands: list[str]) -> str:
    lines = ["# deepspikesort beside the peers", "", "Commands: " + "; then ".join(f"`{c}`" for c in commands), "",
             "2 CPU cores, `n_jobs=2` for every sorter that takes it; kilosort4 with `torch_device='cpu'`. "
             "Column `process`: `fresh` when the sorter ran in its own new Python process, `same` when all "
             "sorters of the command ran in one process (each then reuses what the earlier ones compiled). Peak memory: "
             "the sorter's rise of its process's and workers' memory (anonymous memory summed, shared memory once).",
             ""]
    for case, result in results.items():
        lines += [f"## {case}: {result['num_channels']} channels, {result['num_gt_units']} units, {result['duration_s']:g} s", "",
                  "| sorter | process | wall s | peak MiB | units | mean accuracy | recall | precision | well detected (>0.8) | false positive units | redundant units |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        ranked = sorted(result["rows"].items(), key=lambda item: -item[1]["accuracy"])
        for name, row in ranked:
            lines.append(f"| {name} | {row.get('process', 'same')} | {row['seconds']} | {row['peak_mib']} | {row['units']} | {row['accuracy']} | {row['recall']} | "
                         f"{row['precision']} | {row['well_detected']}/{result['num_gt_units']} | {row['false_positive']} | {row['redundant']} |")
        lines += [""] + [f"- {note}" for note in result["notes"]]
        if (RESULTS / f"peers_{case}.png").exists():
            lines.append(f"Accuracy per unit against SNR: `benchmarks/results/peers_{case}.png`")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["reference32", "tetrode", "dense64", "np128drift"])
    parser.add_argument("--sorters", nargs="+", default=SORTERS)
    parser.add_argument("--process", choices=["fresh", "same"], default="fresh",
                        help="each sorter in its own new Python process (default) or all in this one")
    parser.add_argument("--run-one", nargs=3, metavar=("SORTER", "RECORDING_FILE", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--append", action="store_true",
                        help="keep what peers.json holds; the sorters run now replace their rows in these cases")
    args = parser.parse_args(argv)
    if args.run_one:  # the child of run_in_fresh_process
        name, recording_file, folder = args.run_one
        seconds, peak_mib = run_measured(name, sic.load(recording_file), Path(folder))
        print(json.dumps({"seconds": seconds, "peak_mib": peak_mib}))
        return 0
    command = "python benchmarks/peers.py " + " ".join(sys.argv[1:] if argv is None else argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results, commands = {}, [command.strip()]
    if args.append and (RESULTS / "peers.json").exists():
        previous = json.loads((RESULTS / "peers.json").read_text())
        results = previous["results"]
        commands = list(dict.fromkeys(previous.get("commands", [previous.get("command")]) + commands))
    for case in args.cases:
        result = run_case(case, args.sorters, args.process)
        if args.append and case in results:
            # Row-level merge: the sorters run now replace their rows; the others' rows stay.
            previous = results[case]
            result["rows"] = {**previous["rows"], **result["rows"]}
            result["notes"] = list(dict.fromkeys(previous["notes"] + [  # each note once, however often re-run
                f"rows of {', '.join(args.sorters)} re-run later with `{command.strip()}`: compare their wall time "
                "and memory only with each other, not with the other rows"]))
        results[case] = result
        plot_case(case, result)
        # Written after every case, so a long run that is stopped keeps what it finished.
        (RESULTS / "peers.json").write_text(json.dumps({"commands": commands, "results": results}, indent=2))
        (RESULTS / "peers.md").write_text(to_markdown(results, commands) + "\n")
    print(to_markdown(results, commands))
    return 0


if __name__ == "__main__":
    sys.exit(main())
