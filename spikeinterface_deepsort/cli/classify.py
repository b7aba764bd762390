"""``deepspikesort classify`` and ``deepspikesort compare``."""

from __future__ import annotations

import argparse

from ..errors import ParameterError

# A 32-channel recording whose 10 units fire at 5-40 Hz: 300-2,400 spikes in 60 s, so that the
# classification's default range of 1,000-5,000 spikes holds several of them.
DEMO_FIRING_RATES = (5.0, 40.0)


def add_commands(subparsers) -> None:
    classify = subparsers.add_parser(
        "classify",
        help="phase 1: train and test a CNN on units of a reference sorting",
        description="Train a CNN to tell apart units of a reference sorting (Kilosort/Phy, IBL ALF or a saved "
                    "SpikeInterface sorting) and score it on held-out spikes. Results go to <output>/<SESSION>_<NNN>/.",
    )
    data = classify.add_mutually_exclusive_group(required=True)
    data.add_argument("--recording", help="recording the reference was sorted from: a saved SpikeInterface folder, "
                                          "a SpikeGLX folder, an .nwb file or a raw .bin/.dat file")
    data.add_argument("--demo", action="store_true",
                      help="use a generated 60 s, 32-channel recording and its true sorting instead of data")
    classify.add_argument("--reference", help="Kilosort/Phy folder, IBL ALF folder or saved SpikeInterface sorting")
    classify.add_argument("--min-spikes", type=int, default=1000, help="fewest spikes a chosen unit may have (default 1000)")
    classify.add_argument("--max-spikes", default="5000", help="most spikes a chosen unit may have, or 'max' (default 5000)")
    classify.add_argument("--units", type=int, default=3, help="number of units to classify (default 3)")
    classify.add_argument("--spikes-per-unit", default="all", help="spikes used per unit, or 'all' (default)")
    classify.add_argument("--noise", default="0",
                          help="spike-free noise windows added as a class 'noise': 0 (default), N, or 'all'")
    classify.add_argument("--session", default="sup", help="session name (default 'sup' -> SUP_000)")
    classify.add_argument("--session-number", type=int, default=0, help="session number (default 0)")
    classify.add_argument("--output", default="results", help="folder holding the session folders (default results/)")
    classify.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    classify.add_argument("--epochs", type=int, default=30, help="maximum training epochs (default 30)")
    classify.add_argument("--patience", type=int, default=5,
                          help="stop after this many epochs without validation improvement (default 5)")
    classify.add_argument("--no-preprocessing", action="store_true",
                          help="skip the 300-6000 Hz bandpass and median reference (data already filtered)")
    classify.add_argument("--device", default="auto", help="'auto' (default), 'cpu', 'cuda' or 'cuda:N'")
    session = classify.add_mutually_exclusive_group()
    session.add_argument("--overwrite", action="store_true", help="start an existing session folder again")
    session.add_argument("--resume", action="store_true", help="continue an interrupted session")
    add_recording_options(classify)
    classify.set_defaults(func=run_classify)

    compare = subparsers.add_parser(
        "compare",
        help="compare a sorting with a reference sorting (agreement, matches, plot)",
        description="Compare SORTING with REFERENCE (each a Kilosort/Phy folder, IBL ALF folder, run_sorter output "
                    "or saved SpikeInterface sorting) and write an agreement table, matches and an agreement plot.",
    )
    compare.add_argument("sorting", help="the sorting to score (e.g. a deepspikesort output)")
    compare.add_argument("reference", help="the reference sorting (e.g. Kilosort's)")
    compare.add_argument("--output", required=True, help="folder for the comparison files")
    compare.add_argument("--recording", help="the recording both were sorted from: checks them and dates ALF times")
    compare.add_argument("--ground-truth", action="store_true",
                         help="the reference is ground truth: add accuracy/recall/precision and well-detected counts")
    compare.add_argument("--delta-time-ms", type=float, default=0.4, help="spike matching window in ms (default 0.4)")
    compare.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    add_recording_options(compare)
    compare.set_defaults(func=run_compare)


def add_recording_options(parser: argparse.ArgumentParser) -> None:
    """What a raw binary recording (such as Kilosort's .dat) needs; other formats carry it themselves."""
    parser.add_argument("--sampling-frequency", type=float, help="raw binary recording only: sampling rate in Hz")
    parser.add_argument("--num-channels", type=int, help="raw binary recording only: number of channels")
    parser.add_argument("--dtype", help="raw binary recording only: sample type, e.g. int16")
    parser.add_argument("--probe", help="probe file (.json or .prb) giving the channel positions")


def load_recording_from_args(args: argparse.Namespace):
    from ..io import load_recording

    return load_recording(args.recording, sampling_frequency=args.sampling_frequency,
                          num_channels=args.num_channels, dtype=args.dtype, probe=args.probe)


def run_classify(args: argparse.Namespace) -> int:
    from ..evaluation.classification.classify import classify_units

    if args.demo:
        from ..tools.datasets import ground_truth_recording

        if args.reference:
            raise ParameterError("--demo uses the generated recording's true sorting as the reference: drop --reference.")
        recording, reference = ground_truth_recording(32, 10, 60.0, seed=args.seed, firing_rates=DEMO_FIRING_RATES)
    else:
        if not args.reference:
            raise ParameterError("--reference is required with --recording (only --demo brings its own).")
        recording, reference = load_recording_from_args(args), args.reference
    result = classify_units(
        recording, reference, args.output, min_spikes=args.min_spikes, max_spikes=args.max_spikes, units=args.units,
        spikes_per_unit=args.spikes_per_unit, noise=args.noise, session=args.session,
        session_number=args.session_number, seed=args.seed, epochs=args.epochs, patience=args.patience,
        overwrite=args.overwrite, resume=args.resume, device=args.device,
        preprocess_recording=not args.no_preprocessing, progress=not args.quiet,
    )
    print(f"{result.session_folder}: test accuracy {result.test_accuracy:.4f}, balanced accuracy "
          f"{result.balanced_accuracy:.4f}, macro F1 {result.macro_f1:.4f} on units {[str(u) for u in result.units]}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from ..evaluation.classification.compare import compare_sortings

    recording = load_recording_from_args(args) if args.recording else None
    result = compare_sortings(args.sorting, args.reference, args.output, recording=recording,
                              ground_truth=args.ground_truth, delta_time_ms=args.delta_time_ms,
                              overwrite=args.overwrite)
    summary = result.summary
    line = (f"{result.output}: {summary['num_matched']} of {summary['num_reference_units']} reference units matched "
            f"(mean agreement {summary['mean_matched_agreement']:.3f})")
    if args.ground_truth:
        line += f", {summary['num_well_detected']} well detected, mean accuracy {summary['mean_accuracy']:.3f}"
    print(line)
    return 0
