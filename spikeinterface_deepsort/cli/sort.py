"""Sub-commands ``deepspikesort sort`` and ``deepspikesort demo``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputFolderError, ParameterError, RecordingError
from ..output_folders import check_writable_output, mark_folder, remove_own_folder
from ..params import SORTER_PARAMS
from ..validation import check_output_location


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
    runs = sort.add_mutually_exclusive_group()
    runs.add_argument("--overwrite", action="store_true",
                      help="replace --output if it is a deepspikesort sorter folder holding nothing else "
                           "(any other folder is refused, never deleted)")
    runs.add_argument("--resume", action="store_true",
                      help="continue the interrupted run in --output with its own parameters (a finished run is "
                           "returned as it is)")
    sort.add_argument("--force", action="store_true",
                      help="with --resume: continue even if RECORDING or a --param differs from the run's own "
                           "(the run's own are used)")
    sort.set_defaults(func=run_sort_command)

    demo = subparsers.add_parser("demo", help="sort a generated ground-truth recording and print its score")
    demo.add_argument("--output", default="deepspikesort_demo", help="output folder (default: deepspikesort_demo)")
    demo.add_argument("--num-channels", type=int, default=32)
    demo.add_argument("--num-units", type=int, default=20)
    demo.add_argument("--duration", type=float, default=60.0, help="seconds")
    demo.add_argument("--seed", type=int, default=42, help="seed of the generated recording")
    demo.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    demo.add_argument("--overwrite", action="store_true",
                      help="replace --output if it is a deepspikesort demo folder holding nothing else")
    demo.set_defaults(func=run_demo_command)

    params = subparsers.add_parser("params", help="print the sorter's parameters as a Markdown table")
    params.set_defaults(func=lambda args: print(SORTER_PARAMS.markdown_table()))


def _parse_params(assignments: list[str]) -> dict:
    return dict(SORTER_PARAMS.parse_assignment(text) for text in assignments)


def _run_params(params: dict, quiet: bool) -> dict:
    """The sorter's parameters for this run: -q also switches SpikeInterface's progress bars off."""
    return params | {"job_kwargs": params.get("job_kwargs", {}) | {"progress_bar": False}} if quiet else params


def _check_new_output(folder: Path, kind: str, overwrite: bool, inputs=()) -> None:
    """Before anything is loaded: the folder may be written (ours or new) and its disk can hold it."""
    check_writable_output(folder, overwrite=overwrite, kind=kind, inputs=inputs, option="--overwrite")
    check_output_location(folder)


def _resume_hint(args) -> str:
    return (f"The finished stages are kept in {args.output}; continue with: deepspikesort sort {args.recording} "
            f"--output {args.output} --resume")


@contextmanager
def _exit_on_ctrl_c(message: str):
    """Ctrl-C ends the process at once with ``message`` on stderr and exit status 130.

    Python's own handler raises KeyboardInterrupt wherever the main thread happens to be, and inside
    numba's compiler and SpikeInterface's thread pools that is not safe: a C callback swallows the
    exception (the sort runs on), or it leaves llvmlite's lock taken and the pool's threads wait on it
    for ever (both seen with a Ctrl-C during detection). Every stage writes its output under a
    temporary name and renames it when complete, so stopping here is what a kill does, and --resume
    continues from the last finished stage (tests/test_resume.py kills a sort mid-training and resumes).
    os.write, not print: the handler may run while the main thread is inside a write to stderr."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def stop(signum, frame):
        os.write(2, f"\ndeepspikesort sort: interrupted. {message}\n".encode())
        os._exit(130)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_sort_command(args: argparse.Namespace) -> int:
    import spikeinterface.sorters as ss

    from ..io import load_recording
    from ..sorter import check_resumable, resume_sorting

    if args.force and not args.resume:
        raise ParameterError("--force only applies to --resume: drop it, or add --resume.")
    output = Path(args.output)
    params = _parse_params(args.param)
    if args.resume:
        check_resumable(output)
    else:
        _check_new_output(output, "sorter", args.overwrite, inputs=[Path(args.recording)])
    recording = load_recording(args.recording, args.sampling_frequency, args.num_channels, args.dtype, args.probe)
    if not recording.has_probe():
        raise RecordingError(
            f"{args.recording} has no channel positions. Pass --probe with the probe file: a probeinterface .json "
            "(probeinterface.write_probeinterface) or a .prb file."
        )
    t0 = time.perf_counter()
    with _exit_on_ctrl_c(_resume_hint(args)):
        if args.resume:
            sorting = resume_sorting(output, verbose=not args.quiet, params=params, recording=recording,
                                     force=args.force)
        else:
            sorting = ss.run_sorter("deepspikesort", recording, folder=output,
                                    remove_existing_folder=args.overwrite, verbose=not args.quiet,
                                    **_run_params(params, args.quiet))
    print(f"{len(sorting.unit_ids)} units, {sorting.to_spike_vector().size} spikes in "
          f"{time.perf_counter() - t0:.1f} s; Sorting saved in {output / 'sorter_output' / 'sorting'}")
    return 0


def run_demo_command(args: argparse.Namespace) -> int:
    import spikeinterface.sorters as ss

    from ..tools.datasets import ground_truth_recording
    from ..tools.scoring import score_against_ground_truth

    output = Path(args.output)
    params = _run_params(_parse_params(args.param), args.quiet)
    _check_new_output(output, "demo", args.overwrite)
    remove_own_folder(output, kind="demo")  # checked above: absent, empty, or our demo folder and --overwrite
    output.mkdir(parents=True)
    mark_folder(output, "demo")
    print(f"Generating a ground-truth recording: {args.num_channels} channels, {args.num_units} units, {args.duration:g} s")
    recording, gt_sorting = ground_truth_recording(args.num_channels, args.num_units, args.duration, seed=args.seed,
                                                   folder=output / "ground_truth")
    t0 = time.perf_counter()
    sorting = ss.run_sorter("deepspikesort", recording, folder=output / "sorting", verbose=not args.quiet, **params)
    seconds = time.perf_counter() - t0
    score = score_against_ground_truth(gt_sorting, sorting, recording, figures_folder=output)
    score["sort_seconds"] = round(seconds, 1)
    (output / "score.json").write_text(json.dumps(score, indent=2))
    print(
        f"deepspikesort demo: {score['num_units_found']} units found for {score['num_gt_units']} true units in {seconds:.1f} s\n"
        f"  mean accuracy  {score['mean_accuracy']:.3f}\n"
        f"  mean recall    {score['mean_recall']:.3f}\n"
        f"  mean precision {score['mean_precision']:.3f}\n"
        f"  well detected  {score['well_detected']}/{score['num_gt_units']} (accuracy >= 0.8)\n"
        f"Figures and score.json in {output}; the sorter folder is {output / 'sorting'}"
    )
    return 0
