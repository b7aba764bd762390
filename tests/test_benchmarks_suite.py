"""benchmarks/suite.py's tables: seeds averaged, deepspikesort against the best and the fastest peer."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))  # the scripts import each other by name

import suite  # noqa: E402


def run(sorter, seed, accuracy, seconds, well=3):
    return {"sorter": sorter, "seed": seed, "accuracy": accuracy, "well_detected": well, "false_positive": 1,
            "redundant": 0, "units": 5, "process_s": seconds, "run_sorter_s": seconds - 5.0, "peak_mib": 500,
            "startup": {"interpreter_s": 0.1, "imports_s": 3.0, "load_recording_s": 0.4, "sorter_setup_s": 0.5},
            "stages": {"preprocessing": 2.0, "matching": 4.0}}


def test_rows_comparison_and_summary():
    runs = {"deepspikesort-seed0": run("deepspikesort", 0, 0.90, 20.0), "deepspikesort-seed1": run("deepspikesort", 1, 0.80, 30.0),
            "lupin": run("lupin", None, 0.88, 50.0), "spykingcircus2": run("spykingcircus2", None, 0.80, 40.0),
            "tridesclous2": {"sorter": "tridesclous2", "seed": None, "error": "RuntimeError: boom"}}
    rows = suite.sorter_rows(runs)
    assert rows["deepspikesort"]["accuracy"] == 0.85 and rows["deepspikesort"]["runs"] == 2
    assert rows["deepspikesort"]["process_s"] == 25.0 and "error" in rows["tridesclous2"]
    comparison = suite.comparison(rows)
    assert comparison["best_peer"] == "lupin" and comparison["accuracy_minus_best_peer"] == -0.03
    assert comparison["fastest_peer"] == "spykingcircus2" and comparison["time_ratio"] == 0.62
    stages = suite.stage_table(runs)
    assert stages["startup_s"] == 4.0 and stages["stages"]["matching"] == 4.0
    info = {"units": 6, "kind": "gt", "probe": "tetrode", "channels": 4, "duration_s": 60.0,
            "sampling_frequency": 25000.0, "rate_hz": [2.0, 9.0], "seed": 1}
    results = {"d": {"info": info, "rows": rows, "stages": stages, "comparison": comparison}}
    summary = suite.summarise(results)
    assert summary["sorters"]["deepspikesort"]["well_detected"] == 3.0
    assert summary["sorters"]["tridesclous2"]["failed"] == 1 and summary["time_ratio_max"] == 0.62
    markdown = suite.to_markdown(results, summary, "python benchmarks/suite.py", seeds=2)
    assert "| deepspikesort | 0.85 (0.8-0.9) | 3/6 |" in markdown and "failed: RuntimeError: boom" in markdown
    assert "| d | 0.85 | lupin 0.88 | -0.03 | spykingcircus2 | 0.62 |" in markdown
