"""The `mediacrush` command: upload, inspect and delete media on a MediaCrush server, or run its emulator."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._main import ExamplesFormatter, dispatch
from ._mediacrush_cmds import add_commands
from ._mediacrush_demo import add_demo_command

__all__ = ["build_parser", "main"]


def _emulator(argv: Sequence[str]) -> int:
    from mediacrush_async.testing._cli import main as emulator_main

    return emulator_main(argv)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `mediacrush` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="mediacrush",
        description="Use a MediaCrush server, or run its emulator. Every command reads "
        "MEDIACRUSH_BASE_URL (default https://mediacru.sh), as MediaCrushClient() does.",
        epilog="examples:\n"
        "  mediacrush demo                           # the whole job on the embedded emulator\n"
        "  mediacrush upload cat.gif --out derived/  # upload, wait, download the derived files\n"
        "\nExit codes: 0 all done, 1 some failed, 2 usage or configuration error, 130 interrupted.",
        formatter_class=ExamplesFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_commands(sub)
    add_demo_command(sub)
    emulator = sub.add_parser(
        "emulator",
        help="serve the MediaCrush emulator on loopback (prints MEDIACRUSH_BASE_URL first)",
        add_help=False,
    )
    emulator.add_argument("options", nargs=argparse.REMAINDER, help="see 'emulator --help'")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `mediacrush` with `argv` (default: the process arguments); returns the exit code."""
    return dispatch(argv, build_parser, _emulator)


if __name__ == "__main__":
    sys.exit(main())
