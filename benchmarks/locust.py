"""deepspikesort and its peers on a real recording: the locust tetrode (no ground truth).

The recording is ../shared/data/locust/ (C. Pouzat's locust antennal lobe, zenodo 21589):
both trials concatenated, 4 channels, 15 kHz, 57.5 s, a nominal tetrode geometry. Each
sorter runs in its own fresh Python process with its default parameters (_common's runner).
Without ground truth the table gives what can be measured:

- each sorter's units, and how many have < 1 % ISI violations (spikes closer than 1.5 ms,
  as a share of all inter-spike intervals) -- "clean" units;
- each unit's SNR (peak template amplitude over the noise, SpikeInterface's ``snr`` metric,
  on the recording band-passed 300-6000 Hz) and firing rate;
- pairwise agreement between deepspikesort and each peer (``compare_two_sorters``, 0.4 ms):
  how many of deepspikesort's clean units a peer's unit matches with agreement > 0.8.

    python benchmarks/locust.py [--sorters deepspikesort tridesclous2 spykingcircus2 lupin]

Writes benchmarks/results/locust.md, locust.json and docs/figures/locust_units.png.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import spikeinterface.core as sic  # noqa: E402
import spikeinterface.sorters as ss  # noqa: E402
from spikeinterface.comparison import compare_two_sorters  # noqa: E402

import _common  # noqa: E402
from _common import run_in_fresh_process, sorter_params  # noqa: E402

ROOT = _common.BENCHMARKS.parent
DATA = _common.SHARED / "data" / "locust"
FIGURE = ROOT / "docs" / "figures" / "locust_units.png"
WORK = _common.WORK / "locust"
SORTERS = ["deepspikesort", "tridesclous2", "spykingcircus2", "lupin"]
ISI_MS, CLEAN_PERCENT, MATCH = 1.5, 1.0, 0.8


def isi_violation_percent(spike_train: np.ndarray, fs: float) -> float:
    """Share of inter-spike intervals below ISI_MS, in %."""
    isi = np.diff(np.sort(spike_train)) / fs * 1000.0
    return float((isi < ISI_MS).mean() * 100.0) if isi.size else 0.0


def unit_table(sorting, recording) -> tuple[list[dict], object]:
    """One row per unit (spikes, rate, ISI violations, SNR) and the analyzer that measured them."""
    from spikeinterface.metrics.quality import compute_snrs

    analyzer = sic.create_sorting_analyzer(sorting, _common.for_analysis(recording), sparse=False, format="memory")
    analyzer.compute(["random_spikes", "templates", "noise_levels"], extension_params={
        "random_spikes": {"max_spikes_per_unit": 500, "seed": 0}, "templates": {"ms_before": 1.0, "ms_after": 2.0}})
    snrs = compute_snrs(analyzer)
    fs, duration = recording.get_sampling_frequency(), recording.get_total_duration()
    rows = []
    for unit in sorting.unit_ids:
        train = sorting.get_unit_spike_train(unit)
        rows.append({"unit": str(unit), "spikes": int(train.size), "rate_hz": round(train.size / duration, 2),
                     "isi_violation_percent": round(isi_violation_percent(train, fs), 2),
                     "snr": round(float(snrs[unit]), 1)})
    return rows, analyzer


def agreement_with(sorting, clean_units, peer) -> dict:
    comparison = compare_two_sorters(sorting, peer, "deepspikesort", "peer", delta_time=0.4)
    best = comparison.agreement_scores.max(axis=1)
    return {"matched_clean": int(sum(best[u] > MATCH for u in clean_units)),
            "best_agreement": {str(u): round(float(best[u]), 3) for u in sorting.unit_ids}}


def plot_units(analyzer, rows: list[dict], path: Path, count: int = 5) -> None:
    """Mean waveform of deepspikesort's clean units with the most spikes, on the four channels."""
    clean = sorted((r for r in rows if r["isi_violation_percent"] < CLEAN_PERCENT), key=lambda r: -r["spikes"])
    chosen = [r["unit"] for r in clean[:count]]
    templates = analyzer.get_extension("templates")
    unit_ids = [str(u) for u in analyzer.unit_ids]
    nbefore = templates.nbefore
    fs = analyzer.sampling_frequency
    fig, axes = plt.subplots(1, len(chosen), figsize=(2.6 * len(chosen), 3.2), sharey=True, squeeze=False)
    for ax, unit in zip(axes[0], chosen):
        waveform = templates.get_data()[unit_ids.index(unit)]
        t_ms = (np.arange(waveform.shape[0]) - nbefore) / fs * 1000.0
        for channel in range(waveform.shape[1]):
            ax.plot(t_ms, waveform[:, channel], lw=1.2, label=f"channel {channel}")
        row = next(r for r in rows if r["unit"] == unit)
        ax.set_title(f"unit {unit}: {row['spikes']} spikes\nSNR {row['snr']}, ISI viol. {row['isi_violation_percent']} %",
                     fontsize=9)
        ax.set_xlabel("time from peak (ms)")
    axes[0][0].set_ylabel("mean waveform (counts, band-passed)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("deepspikesort on the locust tetrode (real data): the clean units with the most spikes", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def to_markdown(result: dict, command: str) -> str:
    lines = [f"Command: `{command}`", "",
             "| sorter | seconds | units | clean units (< 1 % ISI violations at 1.5 ms) | "
             "deepspikesort's clean units matched (agreement > 0.8) |", "|---|---|---|---|---|"]
    for name, row in result["sorters"].items():
        matched = row.get("matched_clean", "")
        lines.append(f"| {name} | {row['seconds']} | {len(row['units'])} | {row['clean_units']} | {matched} |")
    lines += ["", "deepspikesort's units:", "", "| unit | spikes | rate (Hz) | ISI violations (%) | SNR | "
              "best agreement with a peer's unit |", "|---|---|---|---|---|---|"]
    for unit in result["sorters"]["deepspikesort"]["units"]:
        best = max((row["best_agreement"].get(unit["unit"], 0.0) for name, row in result["sorters"].items()
                    if name != "deepspikesort"), default=float("nan"))
        lines.append(f"| {unit['unit']} | {unit['spikes']} | {unit['rate_hz']} | {unit['isi_violation_percent']} | "
                     f"{unit['snr']} | {best} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sorters", nargs="+", default=SORTERS)
    args = parser.parse_args(argv)
    shutil.rmtree(WORK, ignore_errors=True)  # this script's own scratch folder
    WORK.mkdir(parents=True)
    recording = _common.locust_tetrode(DATA)
    recording_file = WORK / "recording.json"
    recording.dump(recording_file)
    sortings, result = {}, {"recording": str(recording), "sorters": {}}
    for name in args.sorters:
        print(f"[locust] {name} ...", flush=True)
        run = run_in_fresh_process(sorter=name, recording_file=recording_file, folder=WORK / name,
                                   params=sorter_params(name))
        seconds, peak_mib = run["run_sorter_s"], run["peak_rise_mib"]
        sortings[name] = ss.read_sorter_folder(WORK / name)
        rows, analyzer = unit_table(sortings[name], recording)
        clean = [r["unit"] for r in rows if r["isi_violation_percent"] < CLEAN_PERCENT]
        result["sorters"][name] = {"seconds": round(seconds, 1), "peak_mib": peak_mib, "units": rows,
                                   "clean_units": len(clean)}
        if name == "deepspikesort":
            clean_ds = [u for u in sortings[name].unit_ids if str(u) in clean]
            plot_units(analyzer, rows, FIGURE)
        else:
            result["sorters"][name].update(agreement_with(sortings["deepspikesort"], clean_ds, sortings[name]))
        print(f"[locust] {name}: {len(rows)} units, {len(clean)} clean, {seconds:.1f} s", flush=True)
    command = _common.command_line("locust.py", argv)
    _common.write_results("locust", result, to_markdown(result, command))
    print(to_markdown(result, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
