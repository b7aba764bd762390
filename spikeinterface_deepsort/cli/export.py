"""Sub-command ``deepspikesort export``: a sorter folder to IBL's ALF files or to Phy."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import OutputFolderError

FORMATS = ("alf", "phy")
KINDS = {"alf": "alf-export", "phy": "phy-export"}


def add_commands(subparsers) -> None:
    export = subparsers.add_parser(
        "export",
        help="export a sorter folder to IBL's ALF files or to Phy",
        description=(
            "Export the result of `deepspikesort sort` (or run_sorter) in SORTER_FOLDER. "
            "alf: IBL's spikes.*, clusters.* (with metrics.pqt and uuids.csv), templates.* and channels.* files, "
            "read by ONE's load_object, phylib's alf2phy and spikeinterface.extractors.read_alf_sorting; "
            "phy: Phy's template-gui folder in Kilosort's format (recording.dat in the recording's integer dtype, "
            "positive template-scaling amplitudes, whitening matrices), read by Phy, phylib, bombcell and read_phy. "
            "The output folder is written whole or not at all."
        ),
    )
    export.add_argument("sorter_folder",
                        help="the folder given to `deepspikesort sort --output` or run_sorter(folder=...)")
    export.add_argument("--format", choices=FORMATS, required=True, help="alf or phy")
    export.add_argument("--output", required=True,
                        help="folder to write: new or empty, or an earlier export of the same format with --overwrite")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier export of the same format")
    export.add_argument("--pc-features", action="store_true",
                        help="phy only: also compute principal-component features (slow)")
    export.add_argument("--no-binary", action="store_true",
                        help="phy only: write no recording.dat; params.py points at the sorted recording's own "
                             "binary file (refused when it has none)")
    export.add_argument("--n-jobs", type=int, default=1,
                        help="parallel jobs for amplitudes, locations and the binary copy")
    export.set_defaults(func=run_export_command)


def run_export_command(args: argparse.Namespace) -> int:
    from ..tools.export import export_phy, export_to_alf, load_sorter_folder
    from ..output_folders import check_writable_output

    output = Path(args.output)
    # Refused before the sorter folder is read, with the shell's own option in the message.
    check_writable_output(output, overwrite=args.overwrite, kind=KINDS[args.format], inputs=[Path(args.sorter_folder)])
    sorting, recording = load_sorter_folder(args.sorter_folder)
    if recording is None:
        raise OutputFolderError(
            f"The recording sorted in {args.sorter_folder} cannot be loaded back (its spikeinterface_recording.json "
            "is missing or the recording was not serialisable); export from Python with "
            "export_to_alf(sorting, recording, output_folder) instead."
        )
    job_kwargs = dict(n_jobs=args.n_jobs, progress_bar=not args.quiet)
    if args.format == "alf":
        export_to_alf(args.sorter_folder, recording, output, overwrite=args.overwrite, job_kwargs=job_kwargs)
    else:
        export_phy(args.sorter_folder, recording, output, compute_pc_features=args.pc_features,
                   copy_binary=not args.no_binary, overwrite=args.overwrite, job_kwargs=job_kwargs)
    n_spikes = sorting.to_spike_vector().size
    print(f"{len(sorting.unit_ids)} units, {n_spikes} spikes exported as {args.format} to {output}")
    return 0
