"""Sub-commands ``deepspikesort sort`` and ``deepspikesort demo``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .errors import OutputFolderError
from .params import SORTER_PARAMS


def add_commands(subparsers) -> None:
    sort = subparsers.add_parser("sort", help="sort a recording", description="Sort RECORDING into DIR.")
    sort.add_argument("recording", help="saved SpikeInterface recording folder/JSON, SpikeGLX folder, .nwb, or raw .bin/.dat")
    sort.add_argument("--output", required=True, help="output folder (SpikeInterface's sorter folder layout)")
    sort.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                      help="a sorter parameter, repeatable (see `deepspikesort params`)")
    sort.add_argument("--sampling-frequency", type=float, help="raw binary only: sampling frequency in Hz")
    sort.add_argument("--num-channels", type=int, help="raw binary only: number of channels")
    sort.add_argument("--dtype", help="raw binary only: sample type, e.g. int16")
    sort.add_argument("--probe", help="probeinterface JSON or .prb file with the channel positions")
    sort.add_argument("--overwrite", action="store_true", help="delete an existing output folder first")
    sort.add_argument("--resume", action="store_true", help="continue an interrupted run in --output")
    sort.set_defaults(func=run_sort_command)

    demo = subparsers.add_parser("demo", help="sort a generated ground-truth recording and print its score")
    demo.add_argument("--output", default="deepspikesort_demo", help="output folder (default: deepspikesort_demo)")
    demo.add_argument("--num-channels", type=int, default=32)
    demo.add_argument("--num-units", type=int, default=20)
    demo.add_argument("--duration", type=float, default=60.0, help="seconds")
    demo.add_argument("--seed", type=int, default=42, help="seed of the generated recording")
    demo.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    demo.add_argument("--overwrite", action="store_true", help="delete an existing output folder first")
    demo.set_defaults(func=run_demo_command)

    params = subparsers.add_parser("params", help="print the sorter's parameters as a Markdown table")
    params.set_defaults(func=lambda args: print(SORTER_PARAMS.markdown_table()))


def _parse_params(assignments: list[str], quiet: bool) -> dict:
    params = dict(SORTER_PARAMS.parse_assignment(text) for text in assignments)
    if quiet:
        params.setdefault("job_kwargs", {})["progress_bar"] = False
    return params


def _check_output(folder: Path, overwrite: bool, resume: bool = False) -> None:
    if folder.exists() and not (overwrite or resume):
        raise OutputFolderError(
            f"Output folder {folder} already exists. Pass --overwrite to replace it, --resume to continue "
            "the run in it, or choose another --output."
        )
    if resume and not (folder / "spikeinterface_params.json").exists():
        raise OutputFolderError(f"--resume: {folder} holds no deepspikesort run to continue.")
    # Before the recording is loaded: a parent that is a file, a read-only or full disk.
    # (The preprocessing cache's share of the disk is checked once the recording is known.)
    from .validation import check_output_location

    check_output_location(folder)


def run_sort_command(args: argparse.Namespace) -> int:
    import spikeinterface.sorters as ss

    from .io import load_recording
    from .sorter import resume_sorting

    output = Path(args.output)
    params = _parse_params(args.param, args.quiet)
    _check_output(output, args.overwrite, args.resume)
    t0 = time.perf_counter()
    if args.resume:
        sorting = resume_sorting(output, verbose=not args.quiet)
    else:
        recording = load_recording(args.recording, args.sampling_frequency, args.num_channels, args.dtype, args.probe)
        sorting = ss.run_sorter("deepspikesort", recording, folder=output, remove_existing_folder=args.overwrite,
                                verbose=not args.quiet, **params)
    print(f"{len(sorting.unit_ids)} units, {sorting.to_spike_vector().size} spikes in "
          f"{time.perf_counter() - t0:.1f} s; Sorting saved in {output / 'sorter_output' / 'sorting'}")
    return 0


def run_demo_command(args: argparse.Namespace) -> int:
    import spikeinterface.sorters as ss

    from .datasets import ground_truth_recording
    from .scoring import score_against_ground_truth

    output = Path(args.output)
    params = _parse_params(args.param, args.quiet)
    _check_output(output, args.overwrite)
    print(f"Generating a ground-truth recording: {args.num_channels} channels, {args.num_units} units, {args.duration:g} s")
    recording, gt_sorting = ground_truth_recording(args.num_channels, args.num_units, args.duration, seed=args.seed,
                                                   folder=output / "ground_truth")
    t0 = time.perf_counter()
    sorting = ss.run_sorter("deepspikesort", recording, folder=output / "sorting",
                            remove_existing_folder=args.overwrite, verbose=not args.quiet, **params)
    seconds = time.perf_counter() - t0
    score = score_against_ground_truth(gt_sorting, sorting, recording, figures_folder=output)
    score["sort_seconds"] = round(seconds, 1)
    (output / "score.json").write_text(json.dumps(score, indent=2))
    print(
        f"deepspikesort demo: {score['num_units_found']} units found for {score['num_gt_units']} true units in {seconds:.1f} s\n"
        f"  mean accuracy  {score['mean_accuracy']:.3f}\n"
        f"  mean recall    {score['mean_recall']:.3f}\n"
        f"  mean precision {score['mean_precision']:.3f}\n"
        f"  well detected  {score['well_detected']}/{score['num_gt_units']} (accuracy > 0.8)\n"
        f"Figures and score.json in {output}; the sorter folder is {output / 'sorting'}"
    )
    return 0
