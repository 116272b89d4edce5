"""The `recuro` command: one subcommand per job (see SPEC section 6, or `recuro --help`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._client_cmds import add_client_commands
from ._demo import add_demo_arguments, main_demo
from ._main import ExamplesFormatter, dispatch
from ._restore import RESTORE_DESCRIPTION, RESTORE_EPILOG, add_restore_arguments, main_restore

__all__ = ["build_parser", "main"]


def _emulator(argv: Sequence[str]) -> int:
    from recuro_async.testing._cli import main as emulator_main

    return emulator_main(argv)


_EPILOG = """\
examples:
  recuro demo                          # the whole job on the embedded emulator, offline
  recuro restore reels/*.mov --format Mp4H264 --filter Noise --out restored/
  recuro ls                            # media on the account

Every command reads RECURO_BASE_URL, RECURO_API_KEY and RECURO_API_SECRET (or --base-url, --api-key,
--api-secret-file). Exit codes: 0 all done, 1 some items failed, 2 usage or configuration error,
130 interrupted. `recuro COMMAND --help` tells more."""

_DEMO_DESCRIPTION = (
    "Start the Recuro emulator on loopback, write sample media files, restore them as one batch through "
    "exactly the `recuro restore` path (staging, journal, downloads, progress), check every output byte "
    "for byte and print a summary. No credentials, no network."
)
_DEMO_EPILOG = """\
examples:
  recuro demo
  recuro demo --count 100 --out demo/    # keep the samples, outputs and report.json in demo/"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `recuro` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="recuro",
        description="Restore media with the Recuro Media API, or run its emulator.",
        epilog=_EPILOG,
        formatter_class=ExamplesFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    restore = sub.add_parser(
        "restore",
        help="restore a batch of files or URLs (resumable, inside the rate limit)",
        description=RESTORE_DESCRIPTION,
        epilog=RESTORE_EPILOG,
        formatter_class=ExamplesFormatter,
    )
    add_restore_arguments(restore)
    restore.set_defaults(handler=main_restore)
    demo = sub.add_parser(
        "demo",
        help="the main job on the embedded emulator: a batch restore, verified byte for byte",
        description=_DEMO_DESCRIPTION,
        epilog=_DEMO_EPILOG,
        formatter_class=ExamplesFormatter,
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
