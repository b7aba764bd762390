"""Regenerate the figures of the documentation (docs/figures/*.png).

    python docs/make_figures.py [--work DIR]

Sorts a generated ground-truth recording (16 channels, 8 units, 60 s; SpikeInterface's
generator, so no data is needed), writes its report, and copies three of the report's
figures into docs/figures/: the DeepCluster training curves, the learned embedding and
the unit templates; with Chromium installed, also a screenshot of the report's page
(report_page.png: summary, labelled units, thresholds, templates). Takes a few minutes
on a laptop CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FIGURES = Path(__file__).resolve().parent / "figures"
COPIED = {"deepcluster_history.png": "deepcluster_history.png", "embedding.png": "deepcluster_embedding.png",
          "unit_templates.png": "report_unit_templates.png"}
SORT_PARAMS = dict(seed=0, job_kwargs=dict(n_jobs=1, progress_bar=False))  # default DeepCluster settings
SCREENSHOT_SIZE = "1400,2600"  # CSS pixels: the page from its title down to the templates figure


def screenshot(page: Path, target: Path) -> bool:
    """A headless-Chromium screenshot of ``page`` at 100 % zoom; False where Chromium is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium not found: the screenshot of the report is not updated")
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--no-first-run", f"--user-data-dir={profile}", f"--window-size={SCREENSHOT_SIZE}",
                        "--virtual-time-budget=5000", f"--screenshot={target}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="working folder (default: a temporary folder, removed afterwards)")
    args = parser.parse_args(argv)

    import spikeinterface.sorters as ss

    import spikeinterface_deepsort  # noqa: F401  (registers the sorter)
    from spikeinterface_deepsort.tools.datasets import ground_truth_recording
    from spikeinterface_deepsort.tools.report.build import make_report
    from spikeinterface_deepsort.tools.scoring import score_against_ground_truth

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="deepspikesort_docs_"))
    try:
        recording, gt_sorting = ground_truth_recording(16, 8, 60.0, seed=5, folder=work / "ground_truth")
        sorting = ss.run_sorter("deepspikesort", recording, folder=work / "sort", remove_existing_folder=True,
                                verbose=False, **SORT_PARAMS)
        report = make_report(work / "sort", recording=recording, verbose=False)
        FIGURES.mkdir(exist_ok=True)
        for source, target in COPIED.items():
            shutil.copy(report / source, FIGURES / target)
        screenshot(report / "index.html", FIGURES / "report_page.png")
        score = score_against_ground_truth(gt_sorting, sorting, recording)
        summary = {"recording": "ground_truth_recording(16, 8, 60.0, seed=5)", "sorter_params": SORT_PARAMS,
                   "units_found": len(sorting.unit_ids),
                   **{k: score[k] for k in ("mean_accuracy", "well_detected", "num_gt_units") if k in score}}
        (FIGURES / "figures.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        print(json.dumps(summary, indent=2, default=str))
        print(f"figures written to {FIGURES}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
