"""What every command shares: exit codes, messages, logging, Ctrl-C, the async runner, dispatch, argparse.

Exit codes (SPEC 6), the same for every service: 0 all done, 1 some items failed (or were parked, or are
pending), 2 usage or configuration error (and a batch stopped by something to fix on our side, such as a
full disk), 130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import IO, Any, Final, Generic, TypeVar

import anyio
import attrs

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Call",
    "ExamplesFormatter",
    "Service",
    "UsageError",
    "Voice",
    "add_base_url",
    "add_command",
    "add_emulator_command",
    "arg",
    "dispatch",
    "positive_float",
    "positive_int",
    "print_rows",
    "rows_of",
    "saying",
    "watch_interrupts",
]

ClientT = TypeVar("ClientT")

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


class UsageError(Exception):
    """The command cannot start as typed: one line per problem for a person, all found before any request."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@attrs.frozen
class Voice:
    """A command's lines for a person, on stderr, each prefixed with the program's name."""

    prog: str

    def say(self, message: str) -> None:
        """A note."""
        print(f"{self.prog}: {message}", file=sys.stderr, flush=True)

    def fail(self, message: str) -> None:
        """An error."""
        self.say(f"error: {message}")


@attrs.frozen
class Service(Generic[ClientT]):
    """What a program's commands share: its voice, its client (built from the arguments), its errors.

    Attributes:
        voice: the program's lines on stderr.
        packages: the client packages whose logs `configure_logging` shows.
        connect: a client configured from the arguments (raises a `usage` error when it cannot be).
        add_connection: the options `connect` reads (base URL, credentials).
        usage: the client's errors that mean "fix the command" (exit 2).
        failed: the client's errors that mean "the call failed" (exit 1), told by their message.
    """

    voice: Voice
    packages: tuple[str, ...]
    connect: Callable[[argparse.Namespace], AbstractAsyncContextManager[ClientT]]
    add_connection: Callable[[argparse.ArgumentParser], None]
    usage: tuple[type[Exception], ...] = ()
    failed: tuple[type[Exception], ...] = ()

    def run(
        self, main: Callable[[], Coroutine[Any, Any, int]], *, on_interrupt: str = "interrupted"
    ) -> int:
        """Run a subcommand: `UsageError`, `usage` errors and `ValueError` exit 2, `failed` 1, Ctrl-C 130."""
        usage: tuple[type[Exception], ...] = (*self.usage, ValueError)
        try:
            return anyio.run(main)
        except KeyboardInterrupt:
            # outside the batch's signal watcher: every transition is committed, the journal is consistent
            self.voice.fail(on_interrupt)
            return EXIT_INTERRUPTED
        except UsageError as exc:
            for problem in exc.problems:
                self.voice.fail(problem)
            return EXIT_USAGE
        except usage as exc:
            self.voice.fail(str(exc))
            return EXIT_USAGE
        except self.failed as exc:
            self.voice.fail(str(exc) or type(exc).__name__)
            return EXIT_FAILED

    def command(
        self,
        run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
        *,
        on_interrupt: str = "interrupted",
    ) -> Callable[[argparse.Namespace], int]:
        """A subcommand's handler: the engine's and the client's logs (more with its `-v`, if it has
        one), then `run(args)` under `run`."""

        def handler(args: argparse.Namespace) -> int:
            self.configure_logging(verbose=getattr(args, "verbose", False))
            return self.run(lambda: run(args), on_interrupt=on_interrupt)

        return handler

    def add_calls(
        self,
        sub: argparse._SubParsersAction[argparse.ArgumentParser],
        calls: Sequence[Call[ClientT]],
    ) -> None:
        """The one-call subcommands: each runs `call.run(client, args)` with a client from the
        arguments, under `run`, and prints what it returns (a table, or a line)."""
        for call in calls:

            def handler(args: argparse.Namespace, call: Call[ClientT] = call) -> int:
                async def main() -> int:
                    async with self.connect(args) as client:
                        result = await call.run(client, args)
                    if isinstance(result, str):
                        print(result)
                    elif not isinstance(result, int):
                        print_rows(call.header, result)
                    return result if isinstance(result, int) else EXIT_OK

                return self.run(main)

            parser = add_command(sub, call.name, call.one_line, call.description, call.example)
            for names, options in call.args:
                parser.add_argument(*names, **options)
            self.add_connection(parser)
            parser.set_defaults(handler=handler)

    def configure_logging(self, *, verbose: bool) -> None:
        """The engine's and the client's logs on stderr: errors only, or what they decide with `verbose`."""
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter(self.voice.prog))
        for name in ("orchestrator", *self.packages):
            logger = logging.getLogger(name)
            logger.setLevel(logging.INFO if verbose else logging.ERROR)
            if not logger.handlers:
                logger.addHandler(handler)
                logger.propagate = False


Rows = Sequence[Sequence[str]]
Arg = tuple[tuple[str, ...], dict[str, Any]]


def arg(*names: str, **options: Any) -> Arg:
    """An argument of a `Call`, as `parser.add_argument(*names, **options)` takes it."""
    return names, options


@attrs.frozen
class Call(Generic[ClientT]):
    """A one-call subcommand (`Service.add_calls`): its words, its arguments, and what it does.

    `run(client, args)` returns rows (printed as a table under `header`), a line to print, or an exit
    code when it printed (or failed) on its own.
    """

    name: str
    one_line: str
    description: str
    example: str
    run: Callable[[ClientT, argparse.Namespace], Awaitable[Rows | str | int]]
    header: tuple[str, ...] = ()
    args: tuple[Arg, ...] = ()


async def rows_of(
    listing: Awaitable[Sequence[Any]] | Awaitable[Any], row: Callable[[Any], Sequence[str]]
) -> Rows:
    """The rows of an awaited listing (or of one object), one `row(element)` each."""
    found = await listing
    return [row(x) for x in (found if isinstance(found, list | tuple) else [found])]


async def saying(call: Awaitable[object], line: str) -> str:
    """`line`, once `call` is done."""
    await call
    return line


class _Formatter(logging.Formatter):
    """`PROG: LEVEL LOGGER: message key=value...`, with the record's `extra=` fields."""

    _STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
        "message",
        "asctime",
        "taskName",
    }

    def __init__(self, prog: str) -> None:
        super().__init__()
        self._prog = prog

    def format(self, record: logging.LogRecord) -> str:
        text = f"{self._prog}: {record.levelname} {record.name}: {record.getMessage()}"
        extras = {k: v for k, v in vars(record).items() if k not in self._STANDARD}
        if extras:
            text += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return text


async def watch_interrupts(
    stop: Callable[[], object], abort: Callable[[], object], *, say: Callable[[str], object]
) -> None:
    """Call `stop` on the first SIGINT/SIGTERM and `abort` on the next; runs until cancelled."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
        count = 0
        async for _ in received:
            count += 1
            if count == 1:
                say(
                    "interrupted: admitting nothing new, finishing calls in flight "
                    "(Ctrl-C again to stop now)"
                )
                stop()
            else:
                say("stopping now; the journal is consistent, rerun the same command to resume")
                abort()


# ---------------------------------------------------------------------- argparse


class ExamplesFormatter(argparse.HelpFormatter):
    """Wraps descriptions to the terminal, and keeps an epilog of examples exactly as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.lstrip().lower().startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_base_url(parser: argparse.ArgumentParser, *, env: str, default: str, what: str) -> None:
    """--base-url: the option, else the environment variable `env` (an empty value counts as unset), else
    `default`; the same precedence as the client's constructor."""
    parser.add_argument(
        "--base-url",
        default=os.environ.get(env) or default,
        metavar="URL",
        help=f"{what} base URL (default: ${env}, else {default})",
    )


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    one_line: str,
    description: str,
    epilog: str,
) -> argparse.ArgumentParser:
    """A subcommand with its line in the command list, its description and its examples (`--help`)."""
    return sub.add_parser(
        name,
        help=one_line,
        description=description,
        epilog=epilog if epilog.startswith("example") else f"example:\n  {epilog}",
        formatter_class=ExamplesFormatter,
    )


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


def add_emulator_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], one_line: str
) -> None:
    """`PROG emulator ...`, listed here; `dispatch` hands its arguments to the emulator's own parser."""
    emulator = sub.add_parser("emulator", help=one_line, add_help=False)
    emulator.add_argument("options", nargs=argparse.REMAINDER, help="see 'emulator --help'")


def print_rows(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    tty: bool | None = None,
    stream: IO[str] | None = None,
    red: Callable[[Sequence[str]], bool] = lambda _: False,
) -> None:
    """A table: rich on a terminal (`red` rows in red, under `title`), tab-separated lines otherwise
    (easy to pipe)."""
    if sys.stdout.isatty() if tty is None else tty:
        from rich.console import Console
        from rich.table import Table

        table = Table(*header, title=title)
        for row in rows:
            table.add_row(*row, style="red" if red(row) else None)
        Console(file=stream).print(table)
    else:
        for row in rows:
            print("\t".join(row), file=stream)


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
