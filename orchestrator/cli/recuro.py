"""The `recuro` command: one subcommand per job (see SPEC section 6, or `recuro --help`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._client_cmds import add_client_commands
from ._demo import add_demo_arguments, main_demo
from ._restore import add_restore_arguments, main_restore
from ._shared import dispatch

__all__ = ["build_parser", "main"]


def _emulator(argv: Sequence[str]) -> int:
    from recuro_async.testing._cli import main as emulator_main

    return emulator_main(argv)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `recuro` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="recuro", description="Restore media with the Recuro Media API, or run its emulator."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    restore = sub.add_parser(
        "restore", help="restore a batch of files or URLs (resumable, inside the rate limit)"
    )
    add_restore_arguments(restore)
    restore.set_defaults(handler=main_restore)
    demo = sub.add_parser(
        "demo",
        help="the main job on the embedded emulator: a batch restore, verified byte for byte",
    )
    add_demo_arguments(demo)
    demo.set_defaults(handler=main_demo)
    add_client_commands(sub)
    emulator = sub.add_parser(
        "emulator",
        help="serve the Recuro emulator on loopback (prints RECURO_BASE_URL/KEY/SECRET first)",
        add_help=False,
    )
    emulator.add_argument("options", nargs=argparse.REMAINDER, help="see 'emulator --help'")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `recuro` with `argv` (default: the process arguments); returns the exit code."""
    return dispatch(argv, build_parser, _emulator)


if __name__ == "__main__":
    sys.exit(main())
