"""The benchmark suite: deepspikesort beside its peers on the draws of benchmarks/draws.py.

Every sorter runs on every chosen draw in its own fresh Python process
(``_common.run_in_fresh_process``) with its default parameters, except ``n_jobs=2`` (the
machine's cores, the same for every sorter), deepspikesort's seed and kilosort4's CPU device.
Peers: tridesclous2, spykingcircus2 and lupin always; mountainsort5 and kilosort4 with
``--with-slow``, where installed. deepspikesort runs once per seed 0..N-1 (``--sorter-seeds N``).

Scored with SpikeInterface's GroundTruthComparison (exhaustive ground truth, 0.4 ms): mean
accuracy, well-detected units (accuracy >= 0.8), false-positive and redundant units. Also
recorded: the process's wall time from start to exit (``process s``), the ``run_sorter`` call's
own seconds, the peak memory of the process tree (proportional set size of anonymous and shared memory summed, polled
every 0.2 s during the sort), deepspikesort's seconds per stage (``sorter_output/stages.json``)
and its start-up (process start to its first stage: interpreter, imports with torch, loading the
recording, run_sorter's set-up) as a share of the process's wall time. Numba's compilations
fall inside the stages that trigger them.

Summary: median of the mean accuracies over draws, total well-detected units, and the ratio of
deepspikesort's process wall time to the fastest peer's on each draw (median and max).

Resumable: each (draw, sorter, seed) result is kept in benchmarks/work/suite/<draw>/ and
not run again unless ``--rerun`` (or the draw changed).

    python benchmarks/suite.py [--split dev|test] [--quick] [--draws NAME ...] [--sorter-seeds N]
                               [--with-slow] [--rerun] [--sorters NAME ...]

``--quick``: the draws in draws.QUICK (dev split), under 20 minutes on 2 cores.
Writes benchmarks/results/suite_<split>.json and .md (the draws of this command; the command is in them).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

import numpy as np

import _common
import draws as draw_family
from _common import ground_truth_summary, markdown_table, run_in_fresh_process, sorter_params

WORK = _common.WORK / "suite"
PEERS = ["tridesclous2", "spykingcircus2", "lupin"]
SLOW_PEERS = ["mountainsort5", "kilosort4"]
OURS = "deepspikesort"


def run_key(sorter: str, seed: int | None) -> str:
    return sorter if seed is None else f"{sorter}-seed{seed}"


def run_pair(*, draw, recording_file: Path, gt, sorter: str, seed: int | None, rerun: bool,
             overrides: dict | None = None) -> dict:
    """One sorter (and seed) on one draw, read back from its result file where it already ran.
    ``overrides``: a deepspikesort variant (``sorter`` is then its label), its parameters changed."""
    import spikeinterface.sorters as ss

    folder = WORK / draw.name / run_key(sorter, seed)
    result_file = folder.with_name(folder.name + ".result.json")
    spec = json.loads(json.dumps(asdict(draw)))
    if result_file.exists() and not rerun:
        previous = json.loads(result_file.read_text())
        if previous["draw"] == spec:
            return previous
    print(f"[suite] {draw.name}: {run_key(sorter, seed)} ...", flush=True)
    record = {"draw": spec, "sorter": sorter, "seed": seed} | ({"overrides": overrides} if overrides else {})
    ours = sorter == OURS or overrides is not None
    try:
        params = sorter_params(OURS, seed=seed) | (overrides or {}) if ours else sorter_params(sorter)
        run = run_in_fresh_process(sorter=OURS if ours else sorter, recording_file=recording_file, folder=folder,
                                   params=params)
        record |= {key: run[key] for key in ("process_s", "run_sorter_s", "peak_mib", "peak_rise_mib", "startup")}
        record |= ground_truth_summary(gt=gt, sorting=ss.read_sorter_folder(folder))
        if ours:
            record["stages"] = json.loads((folder / "sorter_output" / "stages.json").read_text())
    except Exception as error:  # a sorter that fails on a draw is reported, not fatal
        traceback.print_exc()
        record["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    result_file.write_text(json.dumps(record, indent=2))
    print(f"[suite] {draw.name}: {run_key(sorter, seed)}: "
          + (record.get("error") or f"accuracy {record['accuracy']}, {record['process_s']:.1f} s"), flush=True)
    return record


def sorter_rows(runs: dict) -> dict:
    """Per sorter, its runs on a draw averaged over seeds (deepspikesort) or as they are."""
    rows = {}
    for sorter in dict.fromkeys(run["sorter"] for run in runs.values()):
        done = [run for run in runs.values() if run["sorter"] == sorter and "error" not in run]
        if not done:
            rows[sorter] = {"error": next(r["error"] for r in runs.values() if r["sorter"] == sorter)}
            continue
        mean = lambda key: float(np.mean([run[key] for run in done]))  # noqa: E731
        rows[sorter] = {"runs": len(done), "accuracy": round(mean("accuracy"), 3),
                        "accuracy_range": [min(r["accuracy"] for r in done), max(r["accuracy"] for r in done)],
                        "well_detected": round(mean("well_detected"), 1), "false_positive": round(mean("false_positive"), 1),
                        "redundant": round(mean("redundant"), 1), "units": round(mean("units"), 1),
                        "process_s": round(float(np.median([r["process_s"] for r in done])), 1),
                        "run_sorter_s": round(float(np.median([r["run_sorter_s"] for r in done])), 1),
                        "peak_mib": round(float(np.median([r["peak_mib"] for r in done])))}
    return rows


def startup_seconds(run: dict) -> float:
    """Process start to deepspikesort's first stage."""
    return sum(run["startup"].values())


def stage_table(runs: dict) -> dict:
    """deepspikesort's seconds per stage (median over seeds), its start-up and start-up share."""
    ours = [run for run in runs.values() if run["sorter"] == OURS and "error" not in run]
    if not ours:
        return {}
    stages = {name: round(float(np.median([run["stages"].get(name, 0.0) for run in ours])), 1) for name in ours[0]["stages"]}
    startup = float(np.median([startup_seconds(run) for run in ours]))
    share = float(np.median([startup_seconds(run) / run["process_s"] for run in ours]))
    imports = float(np.median([run["startup"]["imports_s"] for run in ours]))
    return {"stages": stages, "startup_s": round(startup, 1), "imports_s": round(imports, 1),
            "startup_share": round(share, 3), "process_s": round(float(np.median([r["process_s"] for r in ours])), 1)}


def comparison(rows: dict) -> dict:
    """deepspikesort against the best peer (accuracy) and the fastest (process wall time)."""
    peers = {name: row for name, row in rows.items() if not name.startswith(OURS) and "error" not in row}
    ours = rows.get(OURS, {})
    if not peers or "error" in ours or not ours:
        return {}
    best = max(peers, key=lambda name: peers[name]["accuracy"])
    fastest = min(peers, key=lambda name: peers[name]["process_s"])
    fastest_call = min(peers, key=lambda name: peers[name]["run_sorter_s"])
    return {"best_peer": best, "best_peer_accuracy": peers[best]["accuracy"],
            "accuracy_minus_best_peer": round(ours["accuracy"] - peers[best]["accuracy"], 3),
            "fastest_peer": fastest, "time_ratio": round(ours["process_s"] / peers[fastest]["process_s"], 2),
            "time_ratio_run_sorter": round(ours["run_sorter_s"] / peers[fastest_call]["run_sorter_s"], 2)}


def summarise(results: dict) -> dict:
    """Over draws: per sorter, median accuracy and totals; deepspikesort's time ratios."""
    per_sorter = {}
    for result in results.values():
        for sorter, row in result["rows"].items():
            entry = per_sorter.setdefault(sorter, {"accuracies": [], "well_detected": 0.0, "false_positive": 0.0,
                                                   "redundant": 0.0, "gt_units": 0, "process_s": [], "peak_mib": [],
                                                   "failed": 0})
            if "error" in row:
                entry["failed"] += 1
                continue
            entry["accuracies"].append(row["accuracy"])
            for key in ("well_detected", "false_positive", "redundant"):
                entry[key] += row[key]
            entry["gt_units"] += result["info"]["units"]
            entry["process_s"].append(row["process_s"])
            entry["peak_mib"].append(row["peak_mib"])
    sorters = {}
    for sorter, entry in per_sorter.items():
        sorters[sorter] = {"draws": len(entry["accuracies"]), "failed": entry["failed"],
                           "median_accuracy": round(float(np.median(entry["accuracies"])), 3) if entry["accuracies"] else None,
                           "well_detected": round(entry["well_detected"], 1), "gt_units": entry["gt_units"],
                           "false_positive": round(entry["false_positive"], 1), "redundant": round(entry["redundant"], 1),
                           "total_process_s": round(sum(entry["process_s"]), 1),
                           "median_peak_mib": round(float(np.median(entry["peak_mib"]))) if entry["peak_mib"] else None}
    ratios = [r["comparison"]["time_ratio"] for r in results.values() if r["comparison"]]
    differences = [r["comparison"]["accuracy_minus_best_peer"] for r in results.values() if r["comparison"]]
    shares = [r["stages"]["startup_share"] for r in results.values() if r["stages"]]
    return {"sorters": sorters,
            "time_ratio_median": round(float(np.median(ratios)), 2) if ratios else None,
            "time_ratio_max": round(float(np.max(ratios)), 2) if ratios else None,
            "accuracy_minus_best_peer_min": round(float(np.min(differences)), 3) if differences else None,
            "startup_share_median": round(float(np.median(shares)), 3) if shares else None}


def to_markdown(results: dict, summary: dict, command: str, seeds: int) -> str:
    lines = [f"# Benchmark suite: {', '.join(results)}", "", f"Command: `{command}`", "",
             "Each sorter in its own fresh Python process, default parameters except `n_jobs=2` "
             + ("(deepspikesort: seed 0), " if seeds == 1 else f"(deepspikesort: seeds 0-{seeds - 1}, its rows average over them), ")
             + "2 shared CPU cores. Accuracy: "
             "GroundTruthComparison, exhaustive ground truth; well detected: accuracy >= 0.8; FP / redundant: "
             "false-positive and redundant units. `process s`: the sort's process from start to exit; `run_sorter s`: "
             "the call alone. Peak MiB: the process tree during the sort (proportional set size of anonymous and shared memory, summed: each page once; before session 9, anonymous memory summed, which counted a forked worker's pages shared with its parent again). "
             "Times on a shared machine: compare them as ratios within a draw.", "", "## Summary", ""]
    lines += markdown_table(
        ["sorter", "draws", "median accuracy", "well detected (total)", "FP units (total)", "redundant (total)",
         "total process s", "median peak MiB"],
        [[name, f"{s['draws']}" + (f" ({s['failed']} failed)" if s["failed"] else ""), s["median_accuracy"], f"{s['well_detected']:g}/{s['gt_units']}",
          f"{s['false_positive']:g}", f"{s['redundant']:g}", s["total_process_s"], s["median_peak_mib"]]
         for name, s in summary["sorters"].items()])
    lines += ["", f"deepspikesort's process wall time / the fastest peer's, per draw: median "
              f"**{summary['time_ratio_median']}**, max **{summary['time_ratio_max']}**. Its accuracy minus the best "
              f"peer's, worst draw: {summary['accuracy_minus_best_peer_min']}. Start-up (process start to the first "
              f"stage) as a share of its wall time, median over draws: {summary['startup_share_median']}.", "",
              "## deepspikesort against the peers, per draw", ""]
    lines += markdown_table(
        ["draw", "deepspikesort accuracy", "best peer", "difference", "fastest peer", "time ratio (process)",
         "time ratio (run_sorter)"],
        [[name, r["rows"][OURS]["accuracy"], f"{c['best_peer']} {c['best_peer_accuracy']}", c["accuracy_minus_best_peer"],
          c["fastest_peer"], c["time_ratio"], c["time_ratio_run_sorter"]]
         for name, r in results.items() if (c := r["comparison"])])
    stage_names = list(dict.fromkeys(stage for r in results.values() if r["stages"] for stage in r["stages"]["stages"]))
    lines += ["", "## deepspikesort's seconds per stage", ""]
    lines += markdown_table(
        ["draw", "start-up s (imports s)", *stage_names, "process s", "start-up share"],
        [[name, f"{r['stages']['startup_s']} ({r['stages']['imports_s']})",
          *[r["stages"]["stages"].get(stage, "") for stage in stage_names], r["stages"]["process_s"],
          f"{100 * r['stages']['startup_share']:.0f} %"] for name, r in results.items() if r["stages"]])
    for name, result in results.items():
        info = result["info"]
        lines += ["", f"## {name}: {info['kind']}, {info['probe']}, {info['channels']} channels, {info['units']} units, "
                  f"{info['duration_s']:g} s at {info['sampling_frequency'] / 1000:g} kHz, firing rates "
                  f"{info['rate_hz'][0]}-{info['rate_hz'][1]} Hz, seed {info['seed']}", ""]
        table = []
        for sorter, row in sorted(result["rows"].items(), key=lambda item: -item[1].get("accuracy", -1)):
            if "error" in row:
                table.append([sorter, "failed: " + row["error"], "", "", "", "", "", "", ""])
                continue
            accuracy = row["accuracy"] if row["runs"] == 1 else f"{row['accuracy']} ({row['accuracy_range'][0]}-{row['accuracy_range'][1]})"
            table.append([sorter, accuracy, f"{row['well_detected']:g}/{info['units']}", f"{row['false_positive']:g}",
                          f"{row['redundant']:g}", f"{row['units']:g}", row["process_s"], row["run_sorter_s"], row["peak_mib"]])
        lines += markdown_table(["sorter", "mean accuracy", "well detected", "FP units", "redundant", "units found",
                                 "process s", "run_sorter s", "peak MiB"], table)
    return "\n".join(lines) + "\n"


def chosen_sorters(with_slow: bool) -> list[str]:
    import spikeinterface.sorters as ss

    installed = set(ss.installed_sorters())
    return [OURS] + PEERS + [name for name in SLOW_PEERS if with_slow and name in installed]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=list(draw_family.SPLITS), default="dev")
    parser.add_argument("--quick", action="store_true", help="the quick subset of the dev split (draws.QUICK)")
    parser.add_argument("--draws", nargs="+", help="only these draws of the split")
    parser.add_argument("--sorter-seeds", type=int, default=1, help="deepspikesort runs with seeds 0..N-1")
    parser.add_argument("--with-slow", action="store_true", help="also mountainsort5 and kilosort4, where installed")
    parser.add_argument("--rerun", action="store_true", help="run again what already has a result")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=JSON",
                        help="also a deepspikesort variant for dev experiments, e.g. "
                             "'isosplit={\"pseudo_labels\": \"isosplit\"}' (its rows are named deepspikesort[LABEL])")
    parser.add_argument("--sorters", nargs="+", help="run only these sorters now (the tables keep the others' "
                                                       "earlier results)")
    args = parser.parse_args(argv)
    if args.quick and args.split != "dev":
        parser.error("--quick is a subset of the dev split")
    draw_family.check_splits()
    _common.register_package()  # for installed_sorters() to list deepspikesort
    selected = draw_family.select(args.split, args.draws or (draw_family.QUICK if args.quick else None))
    variants = {}
    for text in args.variant:
        label, _, overrides = text.partition("=")
        variants[f"{OURS}[{label}]"] = json.loads(overrides)
    sorters = chosen_sorters(args.with_slow) + list(variants)
    command = _common.command_line("suite.py", argv)
    stem = f"suite_{args.split}"
    results = {}
    for draw in selected:
        recording, gt, recording_file = draw_family.materialize(draw)
        runs = {}
        for sorter in sorters:
            for seed in (range(args.sorter_seeds) if sorter == OURS or sorter in variants else [None]):
                if args.sorters and sorter not in args.sorters:
                    previous = WORK / draw.name / (run_key(sorter, seed) + ".result.json")
                    if previous.exists():
                        runs[run_key(sorter, seed)] = json.loads(previous.read_text())
                    continue
                runs[run_key(sorter, seed)] = run_pair(draw=draw, recording_file=recording_file, gt=gt, sorter=sorter,
                                                       seed=seed, rerun=args.rerun, overrides=variants.get(sorter))
        rows = sorter_rows(runs)
        results[draw.name] = {"info": draw_family.describe(draw, recording, gt), "rows": rows, "runs": runs,
                              "stages": stage_table(runs), "comparison": comparison(rows)}
        # Written after every draw, so a long run that is stopped keeps what it finished.
        summary = summarise(results)
        _common.write_results(stem, {"command": command, "split": args.split, "sorter_seeds": args.sorter_seeds,
                                     "summary": summary, "results": results},
                              to_markdown(results, summary, command, args.sorter_seeds))
    print((_common.RESULTS / f"{stem}.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
