"""The ``deepspikesort`` command line.

Each feature module contributes its sub-commands through an ``add_commands(subparsers)``
function listed in ``COMMAND_MODULES``; every sub-command sets ``func`` to a callable
taking the parsed arguments. Errors the user can fix (the package's own error types)
are printed as one line and the process exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..version import __version__
from ..errors import DeepSortError

COMMAND_MODULES = [
    "spikeinterface_deepsort.cli.sort",
    "spikeinterface_deepsort.cli.classify",
    "spikeinterface_deepsort.cli.multitask",
    "spikeinterface_deepsort.cli.report",
    "spikeinterface_deepsort.cli.export",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepspikesort",
        description="DeepSpikeSort: spike sorting with a CNN trained the DeepCluster way, on SpikeInterface.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="quiet: no stage lines or progress bars; only the result, warnings and errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    # The level is the handler's: the package's logger runs at INFO while it sorts (its log file
    # keeps every stage), and with -q only warnings and errors reach the console.
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, handlers=[console],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(args.func(args) or 0)
    except DeepSortError as error:
        print(f"deepspikesort {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deepspikesort {args.command}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
