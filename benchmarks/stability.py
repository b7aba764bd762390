"""Stability on drift draws: the same Sorting from the same seed, and no unit hinging on tiny differences.

deepspikesort (default parameters, seed 0) sorts each chosen drift draw of benchmarks/draws.py
six times, each in its own fresh process:

  base         as in the suite (n_jobs=2);
  repeat       the same again: its Sorting must equal base's, spike for spike;
  n_jobs=1     SpikeInterface's workers and chunks split otherwise;
  noise 1-3    the recording plus Gaussian noise of 1e-6 times each channel's noise level (three
               draws of that noise), saved as its own binary recording.

The table gives each run's mean accuracy (GroundTruthComparison, exhaustive) and, per draw, the
spread (max - min) of mean accuracy over the five perturbed runs (base, n_jobs=1, noise 1-3).

    python benchmarks/stability.py [--split dev|test] [--draws NAME ...] [--rerun]

Writes benchmarks/results/stability_<split>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import _common
import draws as draw_family
from _common import ground_truth_summary, markdown_table, run_in_fresh_process, sorter_params

WORK = _common.WORK / "stability"
NOISE_FRACTION = 1e-6
RUNS = ["base", "repeat", "n_jobs=1", "noise 1", "noise 2", "noise 3"]
PERTURBED = ["base", "n_jobs=1", "noise 1", "noise 2", "noise 3"]


def perturbed_recording(recording, folder: Path, noise_seed: int) -> Path:
    """``recording`` plus noise at NOISE_FRACTION of its noise levels, saved in ``folder`` (returned)."""
    import spikeinterface.core as sic

    if (folder / "binary.json").exists():
        return folder
    noise_levels = sic.get_noise_levels(recording, return_in_uV=False, random_slices_kwargs=dict(seed=0))
    rng = np.random.default_rng(noise_seed)
    traces = recording.get_traces().astype(np.float32)
    traces += (rng.standard_normal(traces.shape) * (NOISE_FRACTION * noise_levels)).astype(np.float32)
    perturbed = sic.NumpyRecording(traces, recording.get_sampling_frequency(), channel_ids=recording.channel_ids)
    perturbed.set_probegroup(recording.get_probegroup())
    perturbed.save(folder=folder, n_jobs=1, progress_bar=False)
    return folder


def sort_once(draw, label: str, recording, recording_file: Path, gt, rerun: bool) -> dict:
    import spikeinterface.sorters as ss

    folder = WORK / draw.name / label.replace(" ", "").replace("=", "")
    result_file = folder.with_name(folder.name + ".result.json")
    if result_file.exists() and not rerun:
        return json.loads(result_file.read_text())
    params = sorter_params("deepspikesort", seed=0, n_jobs=1 if label == "n_jobs=1" else _common.N_JOBS)
    if label.startswith("noise"):
        recording_file = perturbed_recording(recording, WORK / draw.name / f"recording_{label.replace(' ', '')}",
                                             noise_seed=int(label.split()[1]))
    print(f"[stability] {draw.name}: {label} ...", flush=True)
    run = run_in_fresh_process(sorter="deepspikesort", recording_file=recording_file, folder=folder, params=params)
    sorting = ss.read_sorter_folder(folder)
    spikes = sorting.to_spike_vector()
    np.save(folder.with_name(folder.name + ".spikes.npy"), spikes)
    record = {"label": label, "process_s": round(run["process_s"], 1)} | ground_truth_summary(gt=gt, sorting=sorting)
    result_file.write_text(json.dumps(record, indent=2))
    print(f"[stability] {draw.name}: {label}: accuracy {record['accuracy']}", flush=True)
    return record


def same_sorting(draw) -> bool:
    a, b = (np.load(WORK / draw.name / f"{name}.spikes.npy") for name in ("base", "repeat"))
    return a.shape == b.shape and bool(np.all(a == b))


def to_markdown(results: dict, command: str) -> str:
    lines = [f"# Stability on drift draws: {', '.join(results)}", "", f"Command: `{command}`", "",
             "deepspikesort, default parameters, seed 0, each run in its own fresh process. `repeat` is `base` "
             "run again; `n_jobs=1` splits the work otherwise; `noise k` adds Gaussian noise of 1e-6 times the "
             "noise level. Spread: max - min of mean accuracy over base, n_jobs=1 and noise 1-3.", ""]
    header = ["draw"] + RUNS + ["spread", "repeat identical"]
    rows = [[name] + [r["runs"][label]["accuracy"] for label in RUNS] + [r["spread"], "yes" if r["identical"] else "no"]
            for name, r in results.items()]
    return "\n".join(lines + markdown_table(header, rows)) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=list(draw_family.SPLITS), default="dev")
    parser.add_argument("--draws", nargs="+", help="only these drift draws of the split")
    parser.add_argument("--rerun", action="store_true", help="sort again what already has a result")
    args = parser.parse_args(argv)
    _common.register_package()
    chosen = [d for d in draw_family.select(args.split, args.draws) if d.kind == "drift"]
    if not chosen:
        parser.error("no drift draw chosen")
    command = _common.command_line("stability.py", argv)
    results = {}
    for draw in chosen:
        recording, gt, recording_file = draw_family.materialize(draw)
        runs = {label: sort_once(draw, label, recording, recording_file, gt, args.rerun) for label in RUNS}
        accuracies = [runs[label]["accuracy"] for label in PERTURBED]
        results[draw.name] = {"runs": runs, "spread": round(max(accuracies) - min(accuracies), 3),
                              "identical": same_sorting(draw)}
        _common.write_results(f"stability_{args.split}", {"command": command, "results": results},
                              to_markdown(results, command))
    print((_common.RESULTS / f"stability_{args.split}.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
