"""deepspikesort beside every installed peer, on generated ground-truth recordings.

Every sorter runs on every case, each in its own fresh Python process by default
(``--process fresh``: what a script calling ``run_sorter`` once sees, numba compilations and
torch's start included, and no sorter inherits what another compiled or allocated), or all
in this process (``--process same``). Wall times compare within a case. Each sorter's peak
memory is the largest memory of the process running it and its workers (proportional set size
of anonymous and shared memory, summed; see _common.tree_memory), polled every 0.2 s while it
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
import sys
import traceback
from pathlib import Path

import numpy as np
import spikeinterface.core as sic
import spikeinterface.sorters as ss

import _common
from _common import RESULTS, ground_truth_summary, run_in_fresh_process, run_measured, sorter_params

WORK = _common.WORK / "peers"
SORTERS = ["deepspikesort", "tridesclous2", "spykingcircus2", "lupin", "mountainsort5", "kilosort4"]


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
    return _common.make_serializable(rec, gt, folder / "ground_truth")


def run_case(case: str, sorters: list[str], process: str = "fresh") -> dict:
    folder = WORK / case
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    recording, gt = make_case(case, folder)
    # The file the fresh processes load the recording from (the drifting generator only pickles).
    recording_file = folder / ("recording.json" if recording.check_serializability("json") else "recording.pkl")
    recording.dump(recording_file)
    snr = _common.ground_truth_snr(recording, gt)
    installed = set(ss.installed_sorters())
    rows, notes = {}, []
    for name in sorters:
        if name not in installed:
            notes.append(f"{name}: not installed, skipped")
            continue
        print(f"[{case}] {name} ...", flush=True)
        try:
            if process == "fresh":
                run = run_in_fresh_process(sorter=name, recording_file=recording_file, folder=folder / name,
                                           params=sorter_params(name))
            else:
                run = run_measured(name, recording, folder / name, sorter_params(name))
            sorting = ss.read_sorter_folder(folder / name)
        except Exception as error:  # a peer that fails on a case is reported, not fatal
            notes.append(f"{name}: failed ({type(error).__name__}: {str(error).splitlines()[0][:150]})")
            traceback.print_exc()
            continue
        rows[name] = {"process": process, "seconds": round(run["run_sorter_s"], 1), "peak_mib": run["peak_rise_mib"]}
        rows[name] |= ground_truth_summary(gt=gt, sorting=sorting)
        print(f"[{case}] {name}: {rows[name]}", flush=True)
    return {"num_gt_units": len(gt.unit_ids), "num_channels": recording.get_num_channels(),
            "duration_s": recording.get_total_duration(), "rows": rows, "notes": notes,
            "snr": [round(float(x), 3) for x in snr]}


def plot_case(case: str, result: dict) -> None:
    """Accuracy per unit against SNR for every row that kept its per-unit accuracies (merged runs included)."""
    accuracies = {name: np.asarray(row["unit_accuracy"]) for name, row in result["rows"].items() if "unit_accuracy" in row}
    if accuracies and "snr" in result:
        _common.plot_accuracy_vs_snr(accuracies, np.asarray(result["snr"]), RESULTS / f"peers_{case}.png")


def to_markdown(results: dict, commands: list[str]) -> str:
    lines = ["# deepspikesort beside the peers", "", "Commands: " + "; then ".join(f"`{c}`" for c in commands), "",
             "2 CPU cores, `n_jobs=2` for every sorter that takes it; kilosort4 with `torch_device='cpu'`. "
             "Column `process`: `fresh` when the sorter ran in its own new Python process, `same` when all "
             "sorters of the command ran in one process (each then reuses what the earlier ones compiled). Peak memory: "
             "the sorter's rise of its process's and workers' memory (proportional set size of anonymous and shared memory, summed: each page once).",
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
    parser.add_argument("--append", action="store_true",
                        help="keep what peers.json holds; the sorters run now replace their rows in these cases")
    args = parser.parse_args(argv)
    command = _common.command_line("peers.py", argv)
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
        _common.write_results("peers", {"commands": commands, "results": results}, to_markdown(results, commands))
    print(to_markdown(results, commands))
    return 0


if __name__ == "__main__":
    sys.exit(main())
