"""What every command shares: exit codes, messages, logging, Ctrl-C, the async runner, dispatch, and the batch.

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
import tempfile
from collections.abc import Callable, Collection, Coroutine, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Final

import anyio
import attrs

from orchestrator._batch import Batch
from orchestrator._config import RunnerConfig
from orchestrator._events import BatchDone, ItemDone, ItemQueued
from orchestrator._inputs import empty_input_problem
from orchestrator._polling import PollSettings
from orchestrator._report import Report
from orchestrator._stages import Item

from ._render import Describe, Renderer

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Ended",
    "ExamplesFormatter",
    "UsageError",
    "Voice",
    "configure_logging",
    "dispatch",
    "exit_code",
    "local_file_problem",
    "out_dir_problem",
    "positive_float",
    "positive_int",
    "print_rows",
    "run_async",
    "run_batch",
    "scaled_config",
    "watch_interrupts",
]

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


# ---------------------------------------------------------------------- running a command


def run_async(
    voice: Voice,
    main: Callable[[], Coroutine[Any, Any, int]],
    *,
    usage: tuple[type[Exception], ...] = (),
    failed: tuple[type[Exception], ...] = (),
    describe: Callable[[Exception], str] = str,
    on_interrupt: str = "interrupted",
) -> int:
    """Run a subcommand: `UsageError`, `usage` errors and `ValueError` exit 2, `failed` 1, Ctrl-C 130."""
    usage_errors: tuple[type[Exception], ...] = (*usage, ValueError)
    try:
        return anyio.run(main)
    except KeyboardInterrupt:
        # outside the batch's signal watcher: every transition is committed, the journal is consistent
        voice.fail(on_interrupt)
        return EXIT_INTERRUPTED
    except UsageError as exc:
        for problem in exc.problems:
            voice.fail(problem)
        return EXIT_USAGE
    except usage_errors as exc:
        voice.fail(str(exc))
        return EXIT_USAGE
    except failed as exc:
        voice.fail(describe(exc))
        return EXIT_FAILED


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


def configure_logging(prog: str, packages: Iterable[str], *, verbose: bool) -> None:
    """The engine's and the client's logs on stderr: errors only, or what they decide with `verbose`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(prog))
    for name in ("orchestrator", *packages):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO if verbose else logging.ERROR)
        if not logger.handlers:
            logger.addHandler(handler)
            logger.propagate = False


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


# ---------------------------------------------------------------------- checks before any request


def local_file_problem(text: str, *, suffixes: Collection[str] | None = None) -> str | None:
    """What is wrong with a local input (missing, not a file, a container not in `suffixes`, unreadable,
    empty), or None (blocking)."""
    path = Path(text).expanduser()
    try:
        if not path.exists():
            return f"{text}: no such file"
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "is special"
            return f"{text}: {what}, not a regular file"
        if suffixes is not None and path.suffix.lower() not in suffixes:
            allowed = ", ".join(sorted(e.lstrip(".").upper() for e in suffixes))
            found = path.suffix or "(no extension)"
            return f"{text}: unsupported container {found!r}; supported: {allowed}"
        with path.open("rb") as handle:
            handle.read(1)
        size = path.stat().st_size
    except OSError as exc:
        return f"{text}: cannot read the file ({exc.strerror or exc})"
    return empty_input_problem(text, size)


def out_dir_problem(out: Path) -> str | None:
    """What is wrong with an output directory (made if missing), or None (blocking)."""
    if out.exists() and not out.is_dir():
        return f"--out {str(out)!r}: not a directory"
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        return f"--out {str(out)!r}: not a writable directory ({exc.strerror or exc})"
    return None


# ---------------------------------------------------------------------- the batch


def scaled_config(
    out: Path,
    time_scale: float,
    *,
    poll: tuple[float, float],
    settle: float,
    reconcile_interval: float | None = None,
    phase_timeout: float | None = None,
    webhook: bool = False,
    **knobs: Any,
) -> RunnerConfig:
    """The engine's knobs, each duration given in seconds at time scale 1 and scaled here, once.

    `poll` is the (shortest, longest) poll interval; `knobs` are `RunnerConfig`'s other fields.
    `--time-scale X` scales all of them (and the emulator's clock) for tests and demos.
    """
    scaled = {"reconcile_interval": reconcile_interval * time_scale} if reconcile_interval else {}
    return RunnerConfig(
        out_dir=out,
        poll=PollSettings(
            min_interval=poll[0] * time_scale,
            max_interval=poll[1] * time_scale,
            webhook=webhook,
            **scaled,
        ),
        settle=settle * time_scale,
        phase_timeout=None if phase_timeout is None else phase_timeout * time_scale,
        backoff=1.0 * time_scale,
        backoff_cap=30.0 * time_scale,
        callback_wait=_CALLBACK_WAIT * time_scale,
        **knobs,
    )


_CALLBACK_WAIT: Final = 1800.0  # seconds an undecidable upload waits for its callback, at scale 1


@attrs.frozen
class Ended:
    """How a batch ended: its last event (None when it never ended), its report and its items."""

    last: BatchDone | None
    report: Report
    items: tuple[Item, ...] = ()

    @property
    def fatal(self) -> str | None:
        """What stopped the batch on our side (a full disk...), or None."""
        return self.last.error if self.last is not None else None

    @property
    def interrupted(self) -> bool:
        """True when Ctrl-C (or SIGTERM) ended the batch early."""
        return self.report.interrupted


async def run_batch(
    opened: AbstractAsyncContextManager[Batch],
    inputs: Sequence[str],
    *,
    renderer: Renderer,
    voice: Voice,
    describe: Describe | None = None,
    report: Path | None = None,
    watch_signals: bool = True,
) -> Ended:
    """Run an opened batch (`open_batch(...)`), showing its events; Ctrl-C stops it, a second aborts it.

    `describe` is the service's hook that describes a finished item's result (its files) for the renderer.
    """
    last: BatchDone | None = None
    items: dict[str, Item] = {}
    async with opened as batch, anyio.create_task_group() as tg:
        runner = batch.runner
        if watch_signals:
            tg.start_soon(lambda: watch_interrupts(runner.stop, runner.abort, say=voice.say))
        with renderer:
            async for event in batch.run(inputs):
                item: Item | None = None
                if isinstance(event, BatchDone):
                    last = event
                elif not isinstance(event, ItemQueued):
                    item = items.get(event.key)
                    if (
                        item is None
                    ):  # items admitted since the last look: one snapshot for them all
                        items = {i.key: i for i in runner.items}
                        item = items.get(event.key)
                details: Sequence[str] = ()
                if isinstance(event, ItemDone) and describe is not None:
                    details = await describe(event)
                renderer.handle(event, item, details)
        tg.cancel_scope.cancel()
        stopped = runner.stopping
    fatal = last.error if last is not None else None
    interrupted = last is None or last.interrupted or (stopped and fatal is None)
    ended = Ended(last, batch.report(interrupted=interrupted), tuple(batch.items))
    if report is not None:
        await anyio.Path(report).write_text(ended.report.to_json(), encoding="utf-8")
    return ended


def exit_code(ended: Ended, voice: Voice, *, retry_option: str = "--retry-failed") -> int:
    """The exit code of an ended batch, after saying what to do next."""
    if ended.fatal is not None:
        voice.fail(f"the batch stopped: {ended.fatal}; rerun the same command to resume")
        return EXIT_USAGE  # something to fix on our side (disk, journal), then rerun
    if ended.interrupted:
        voice.say("interrupted; rerun the same command to resume")
        return EXIT_INTERRUPTED
    totals = ended.report.totals
    if totals["pending"]:
        voice.say(
            f"{totals['pending']} item(s) stopped on our side and kept their media; "
            "rerun the same command to resume them"
        )
    if totals["failed"]:
        voice.say(
            f"{totals['failed']} item(s) failed; rerun the same command with {retry_option} "
            "to try them again"
        )
    return EXIT_FAILED if ended.report.failed else EXIT_OK


# ---------------------------------------------------------------------- argparse


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
