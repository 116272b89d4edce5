"""What the batch commands (`recuro restore`, `mediacrush upload`) share: options, checks, the run, exit codes.

A batch command reads its options, checks everything typed before any request (`input_problems`: all
problems at once, exit 2), opens the batch with its adapter's settings and `open_batch`, and hands it to
`drive`, which shows its events with the service's `Wording`, lets Ctrl-C stop it (a second Ctrl-C
aborts), writes the report and prints the summary; `exit_code` then says what to do next.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Final

import anyio
import attrs

from orchestrator._batch import Batch
from orchestrator._events import BatchDone, ItemDone, ItemQueued
from orchestrator._journal import JournalError
from orchestrator._report import Report
from orchestrator._stages import Item

from ._main import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    Voice,
    positive_float,
    positive_int,
    watch_interrupts,
)
from ._render import Renderer, Wording, make_renderer, print_summary

__all__ = ["RESUME", "Ended", "add_batch_options", "drive", "exit_code", "input_problems"]

RESUME: Final = "interrupted; rerun the same command to resume"
"""What a batch command says when Ctrl-C ends it (its journal is consistent)."""


def add_batch_options(
    parser: argparse.ArgumentParser,
    *,
    service: str,
    noun: str,
    out_help: str | None,
    max_active: int,
    max_active_help: str,
) -> None:
    """--out (required when `out_help` is None), --journal, --retry-failed, --report, --max-active,
    --time-scale and -v."""
    parser.add_argument(
        "--out",
        type=Path,
        required=out_help is None,
        metavar="DIR",
        help=out_help or "output directory",
    )
    parser.add_argument(
        "--journal",
        type=Path,
        metavar="FILE",
        help=f"the batch journal (default: DIR/.{service}-journal.sqlite); rerun to resume",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help=f"try the {noun}s that failed before again"
    )
    parser.add_argument("--report", type=Path, metavar="FILE", help="write a JSON report to FILE")
    parser.add_argument(
        "--max-active",
        type=positive_int,
        default=max_active,
        metavar="N",
        help=max_active_help,
    )
    parser.add_argument(
        "--time-scale",
        type=positive_float,
        default=1.0,
        metavar="X",
        help="scale the engine's durations (poll intervals, backoffs, the rate window) for an "
        "emulator run with --time-scale",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine decides")


def input_problems(
    inputs: Sequence[str],
    problem_of: Callable[[str], str | None],
    *,
    out: Path | None,
    report: Path | None,
    none: str | None,
) -> list[str]:
    """Every problem with the inputs (`none` when there are none), the report's directory and the output
    directory (made if missing), one line each (blocking)."""
    problems = [] if inputs or none is None else [none]
    if report is not None and not report.parent.is_dir():
        problems.append(f"--report {str(report)!r}: no directory {str(report.parent)!r}")
    problems += [p for p in map(problem_of, inputs) if p is not None]
    if out is not None and out.exists() and not out.is_dir():
        problems.append(f"--out {str(out)!r}: not a directory")
    elif out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
                pass
        except OSError as exc:
            problems.append(f"--out {str(out)!r}: not a writable directory ({exc.strerror or exc})")
    return problems


@attrs.frozen
class Ended:
    """How a batch ended: its last event (None when it never ended) and its report."""

    last: BatchDone | None
    report: Report

    @property
    def fatal(self) -> str | None:
        """What stopped the batch on our side (a full disk...), or None."""
        return self.last.error if self.last is not None else None

    @property
    def interrupted(self) -> bool:
        """True when Ctrl-C (or SIGTERM) ended the batch early."""
        return self.report.interrupted


async def drive(
    opened: AbstractAsyncContextManager[Batch],
    inputs: Sequence[str],
    *,
    voice: Voice,
    wording: Wording,
    renderer: Renderer | None = None,
    tty: bool | None = None,
    report: Path | None = None,
    watch_signals: bool = True,
) -> Ended:
    """Run an opened batch (`open_batch(...)`), showing its events, then print its summary; Ctrl-C stops
    it, a second aborts it; `UsageError` when its journal is another job's or another run holds it.

    A finished item's output is described by the service's `Describer` hook (its files), for the renderer.
    With tab-separated lines (`wording.tabs`) stdout is for scripts: the table is shown on a terminal
    only, and the totals go to stderr.
    """
    started = time.monotonic()
    tty = sys.stdout.isatty() if tty is None else tty
    renderer = renderer or make_renderer(tty=tty, wording=wording)
    last: BatchDone | None = None
    items: dict[str, Item] = {}
    try:
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
                        if item is None:  # admitted since the last look: one snapshot for them all
                            items = {i.key: i for i in runner.items}
                            item = items.get(event.key)
                    details = await batch.describe(event) if isinstance(event, ItemDone) else ()
                    renderer.handle(event, item, details)
            tg.cancel_scope.cancel()
            stopped = runner.stopping
    except JournalError as exc:
        raise UsageError([str(exc)]) from exc
    fatal = last.error if last is not None else None
    interrupted = last is None or last.interrupted or (stopped and fatal is None)
    ended = Ended(last, batch.report(interrupted=interrupted))
    if report is not None:
        await anyio.Path(report).write_text(ended.report.to_json(), encoding="utf-8")
    if tty or not wording.tabs:
        print_summary(ended.report, tty=tty, title=wording.title)
    if wording.tabs and last is not None:
        voice.say(
            f"{last.done} done, {last.failed} failed"
            + (f", {last.parked} parked" if last.parked else "")
            + (f", {last.pending} pending" if last.pending else "")
            + f" in {time.monotonic() - started:.1f} s"
        )
    return ended


def exit_code(ended: Ended, voice: Voice) -> int:
    """The exit code of an ended batch, after saying what to do next."""
    if ended.fatal is not None:
        voice.fail(f"the batch stopped: {ended.fatal}; rerun the same command to resume")
        return EXIT_USAGE  # something to fix on our side (disk, journal), then rerun
    if ended.interrupted:
        voice.say(RESUME)
        return EXIT_INTERRUPTED
    totals = ended.report.totals
    if totals["pending"]:
        voice.say(
            f"{totals['pending']} item(s) stopped on our side and kept their media; "
            "rerun the same command to resume them"
        )
    if totals["failed"]:
        voice.say(
            f"{totals['failed']} item(s) failed; rerun the same command with --retry-failed "
            "to try them again"
        )
    return EXIT_FAILED if ended.report.failed else EXIT_OK
