"""What the `recuro` and `mediacrush` commands share: dispatch and table output."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Final

__all__ = [
    "EXIT_USAGE",
    "ExamplesFormatter",
    "dispatch",
    "positive_float",
    "positive_int",
    "print_rows",
]

EXIT_USAGE: Final = 2


class ExamplesFormatter(argparse.HelpFormatter):
    """Wraps descriptions to the terminal, and keeps an epilog of examples exactly as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.lstrip().lower().startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def dispatch(
    argv: Sequence[str] | None,
    build_parser: Callable[[], argparse.ArgumentParser],
    emulator_main: Callable[[Sequence[str]], int],
) -> int:
    """Parse `argv` and run the chosen subcommand; `emulator ...` goes to the emulator's own parser."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:  # argparse's REMAINDER would not capture its --options
        return emulator_main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # `recuro ls | head -1`: the reader chose to stop reading; that is not our failure. Point stdout
        # at /dev/null so that the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    return code


def print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table: rich on a terminal, tab-separated lines otherwise (easy to pipe)."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*header)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:
        for row in rows:
            print("\t".join(row))


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
    return value
