"""Sub-command ``deepspikesort report``: the HTML report of a finished sort."""

from __future__ import annotations

import argparse


def add_commands(subparsers) -> None:
    report = subparsers.add_parser(
        "report", help="write the HTML report (figures, quality metrics) of a finished sort",
        description="Build a SortingAnalyzer on the final Sorting of SORTER_FOLDER and write index.html, its PNG "
                    "figures and quality_metrics.csv into SORTER_FOLDER/report (or --output).",
    )
    report.add_argument("sorter_folder", metavar="SORTER_FOLDER",
                        help="the folder given to run_sorter(folder=...) or `deepspikesort sort --output`")
    report.add_argument("--output", help="report folder (default: SORTER_FOLDER/report); an existing report is replaced")
    report.add_argument("--recording",
                        help="the recording that was sorted, where the sorter folder cannot reload it (a saved "
                             "recording folder/JSON, SpikeGLX folder or .nwb file)")
    report.add_argument("--interactive", action="store_true",
                        help="also write an interactive view (figpack; needs the 'interactive' extra) into "
                             "REPORT/interactive, linked from the page")
    report.set_defaults(func=run_report_command)


def run_report_command(args: argparse.Namespace) -> int:
    from ..io import load_recording
    from ..tools.report.build import make_report

    recording = load_recording(args.recording) if args.recording else None
    folder = make_report(args.sorter_folder, recording=recording, report_folder=args.output, verbose=not args.quiet,
                         interactive=args.interactive)
    print(f"Report written: {folder / 'index.html'}")
    return 0
