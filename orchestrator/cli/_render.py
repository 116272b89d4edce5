"""Showing a batch: rich progress bars on a terminal (overall and per active item), plain lines otherwise.

One set of renderers for every service; a service brings its words (`Wording`: stage labels, what the
overall bar counts, tab-separated lines for scripts or lines for people), and its adapter's `Describer`
hook says what a finished item's output stands for (the files of a MediaCrush manifest). Renderers
consume the Runner's event stream; none prints secrets (events carry none).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any, Final, Protocol, Self

import attrs

from orchestrator._events import (
    BatchDone,
    DownloadProgress,
    Event,
    ItemDone,
    ItemFailed,
    ItemProgress,
    ItemQueued,
    StageChanged,
)
from orchestrator._report import Report, Tally, display_name, size_text
from orchestrator._stages import TERMINAL_STAGES, Item, Stage

from ._main import print_rows

__all__ = [
    "PlainRenderer",
    "Renderer",
    "RichRenderer",
    "TabRenderer",
    "Wording",
    "make_renderer",
    "print_summary",
]

_MAX_ROWS = 12  # per-item bars shown at once on a terminal
_MAX_TABLE = 40  # larger batches list only the items that did not finish in the terminal table


def _every_stage(labels: Mapping[Stage, str]) -> Mapping[Stage, str]:
    """Every stage's label: its own name unless `labels` words it otherwise."""
    return {stage: labels.get(stage, stage.value) for stage in Stage}


@attrs.frozen
class Wording:
    """A service's words for the shared renderers.

    Attributes:
        labels: what the service calls a stage, where it is not the stage's name.
        overall: the overall bar's name.
        title: the summary table's title.
        rate: the API requests per second the batch may send (the ETA's budget bound), or None.
        tabs: plain output as tab-separated lines for scripts (`input, state, details...`, each state
            once) instead of lines for people.
        tab_stages: the stages the tab-separated lines name by their label (besides uploads).
    """

    labels: Mapping[Stage, str] = attrs.field(factory=dict, converter=_every_stage)
    overall: str = "batch"
    title: str = "summary"
    rate: float | None = None
    tabs: bool = False
    tab_stages: frozenset[Stage] = frozenset({Stage.DOWNLOADING})


class Renderer(Protocol):
    """Shows events as they come (a context manager around the batch)."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def handle(self, event: Event, item: Item | None = None, details: Sequence[str] = ()) -> None:
        """Show one event (`item`: its item, when known; `details`: a finished item's result)."""
        ...

    def upload_progress(self, key: str, sent: int, total: int | None) -> None:
        """Bytes of a local input sent to a service that takes the bytes."""
        ...


class PlainRenderer:
    """One line per transition, for logs and pipes; download progress in quarters.

    Lines are flushed at most `FLUSH_DELAY` seconds after they are written (failures and the batch's end at
    once), not one write per line: a large batch prints a dozen lines per item, and a flushed write each
    cost more CPU than the rest of rendering.
    """

    FLUSH_DELAY: Final = 0.25

    def __init__(self, stream: IO[str] | None = None, *, wording: Wording | None = None) -> None:
        self._stream = stream or sys.stdout
        self._labels = (wording or Wording()).labels
        self._quarters: dict[str, int] = {}
        self._flush_pending = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._flush()

    def _flush(self) -> None:
        self._flush_pending = False
        self._stream.flush()

    def _line(self, text: str, *, now: bool = False) -> None:
        self._stream.write(text + "\n")
        if now:
            self._flush()
        elif not self._flush_pending:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a synchronous caller): flush every line
                self._flush()
                return
            self._flush_pending = True
            loop.call_later(self.FLUSH_DELAY, self._deferred_flush)

    def _deferred_flush(self) -> None:
        if self._flush_pending:  # (else flushed meanwhile, or the renderer has ended)
            with contextlib.suppress(ValueError, OSError):  # a stream closed under us
                self._flush()

    def upload_progress(self, key: str, sent: int, total: int | None) -> None:
        """Plain lines show no upload bytes."""

    def handle(self, event: Event, item: Item | None = None, details: Sequence[str] = ()) -> None:  # noqa: ARG002
        """Print the event as one line (or nothing, for fine-grained progress)."""
        if isinstance(event, ItemQueued):
            if event.stage is not Stage.QUEUED:
                self._line(f"{display_name(event.key)}: resumed at {self._labels[event.stage]}")
        elif isinstance(event, StageChanged):
            self._line(f"{display_name(event.key)}: {self._labels[event.new]}")
        elif isinstance(event, DownloadProgress):
            if event.total:
                quarter = min(4 * event.done // event.total, 3)
                if quarter > self._quarters.get(event.key, -1):
                    self._quarters[event.key] = quarter
                    self._line(
                        f"{display_name(event.key)}: downloaded {event.done} of {event.total} bytes"
                    )
        elif isinstance(event, ItemDone):
            note = " (done earlier)" if event.skipped else ""
            self._line(
                f"done {display_name(event.key)} -> {event.output_path} ({event.size} bytes){note}"
            )
        elif isinstance(event, ItemFailed):
            what = "PARKED" if event.parked else "STOPPED" if event.resumable else "FAILED"
            self._line(
                f"{what} {display_name(event.key)}: {event.error_code}: {event.error_message}",
                now=True,
            )
        elif isinstance(event, BatchDone):
            self._line(
                f"batch {'interrupted' if event.interrupted else 'finished'}: {event.done} done, "
                f"{event.failed} failed, {event.parked} parked, {event.pending} pending",
                now=True,
            )


_FINAL: Final = frozenset({"done", "failed", "parked", "stopped"})  # tab states flushed at once


class TabRenderer(PlainRenderer):
    """Tab-separated lines for scripts: the input, its state (each once), and details.

    States: `uploading` only when bytes go out (a file the service already had is `already uploaded`),
    `uploaded\tID`, the service's own progress states, the stage labels the wording names (e.g.
    `downloading`), then `done\tID\tRESULT...` or `failed\tCODE\tMESSAGE` (`parked` likewise, and
    `stopped` for a stop on our side that rerunning the command resumes).
    """

    def __init__(self, stream: IO[str] | None = None, *, wording: Wording | None = None) -> None:
        wording = wording or Wording()
        super().__init__(stream, wording=wording)
        self._labels = {s: wording.labels[s] for s in wording.tab_stages}
        self._last: dict[str, str] = {}
        self._items: dict[str, Item] = {}
        self._sent: set[str] = set()

    def _state(self, item: Item, state: str, *fields: str) -> None:
        if self._last.get(item.key) != state:
            self._last[item.key] = state
            self._line("\t".join((item.input, state, *fields)), now=state in _FINAL)

    def upload_progress(self, key: str, sent: int, total: int | None) -> None:  # noqa: ARG002
        """The first bytes of an upload say `uploading`; the lines show no byte counts."""
        self._sent.add(key)
        item = self._items.get(key)
        if item is not None:
            self._state(item, "uploading")

    def handle(self, event: Event, item: Item | None = None, details: Sequence[str] = ()) -> None:
        """Print the item's new state, if it changed."""
        if item is None:
            return
        self._items[item.key] = item
        remote_id = item.remote_id or ""
        if isinstance(event, StageChanged):
            if event.new is Stage.UPLOADED and item.key in self._sent:
                self._state(item, "uploading")  # in case its bytes went out before it was known
                self._state(item, "uploaded", remote_id)
            elif event.new is Stage.UPLOADED:
                self._state(item, "already uploaded", remote_id)
            elif event.new in self._labels:
                self._state(item, self._labels[event.new])
        elif isinstance(event, ItemProgress):
            self._state(item, event.state)
        elif isinstance(event, ItemDone):
            self._state(item, "done", remote_id, *(details or (event.output_path,)))
        elif isinstance(event, ItemFailed):
            state = "parked" if event.parked else "stopped" if event.resumable else "failed"
            self._state(item, state, event.error_code, event.error_message)


class RichRenderer:
    """An overall bar with an ETA, one bar per active item, and a line counting the in-flight items
    that have no bar of their own (`and 37 more: ...`), so that nothing in flight is invisible.

    Item bars show what is known: a job's progress in percent, a download's bytes; a pulsing bar until
    then. The counts and the ETA are the report's `Tally` (the pace so far, bounded by the rate budget).
    """

    def __init__(
        self, console: Any = None, *, rate: float | None = None, wording: Wording | None = None
    ) -> None:
        from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            transient=False,
            console=console,
        )
        wording = wording or Wording()
        self._rate = rate if rate is not None else wording.rate
        self._labels = wording.labels
        self._name = wording.overall
        self._overall: TaskID = self._progress.add_task(self._name, total=0, detail="")
        self._more: TaskID = self._progress.add_task("", total=None, detail="", visible=False)
        self._rows: dict[str, TaskID] = {}
        self._tally = Tally()

    def __enter__(self) -> Self:
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def _describe(self, key: str) -> str:
        return f"{display_name(key)[:32]:<32} {self._labels[self._tally.stages[key]]}"

    def _row(self, key: str) -> Any:
        task = self._rows.get(key)
        if task is None and len(self._rows) < _MAX_ROWS:
            task = self._progress.add_task(self._describe(key), total=None, detail="")
            self._rows[key] = task
        return task

    def _drop(self, key: str) -> None:
        task = self._rows.pop(key, None)
        if task is not None:
            self._progress.remove_task(task)
            hidden = next((k for k in self._tally.in_flight() if k not in self._rows), None)
            if hidden is not None:  # a bar came free: give it to an item that had none
                self._row(hidden)

    def _show_counts(self) -> None:
        """`and N more: 3 uploading, 20 analysing, ...` for in-flight items without a bar; the ETA."""
        hidden = [k for k in self._tally.in_flight() if k not in self._rows]
        counts = Counter(self._labels[self._tally.stages[key]] for key in hidden)
        parts = ", ".join(f"{n} {label}" for label, n in sorted(counts.items()))
        more = f"and {len(hidden)} more: {parts}"
        self._progress.update(self._more, description=more, visible=bool(hidden))
        detail = self._tally.progress_text(self._progress.tasks[0].elapsed, self._rate)
        self._progress.update(self._overall, total=self._tally.total, detail=detail)

    def _transfer(self, key: str, done: int, total: int | None) -> None:
        """An upload's or a download's bytes on its item's bar."""
        task = self._rows.get(key)
        if task is not None:
            detail = f"{size_text(done)} / {size_text(total) if total is not None else '?'}"
            self._progress.update(task, completed=done, total=total, detail=detail)

    def upload_progress(self, key: str, sent: int, total: int | None) -> None:
        """An upload's bytes on its item's bar."""
        self._transfer(key, sent, total)

    def handle(self, event: Event, item: Item | None = None, details: Sequence[str] = ()) -> None:
        """Update the bars."""
        p = self._progress
        self._tally.update(event)
        task = self._rows.get(event.key) if not isinstance(event, BatchDone) else None
        if isinstance(event, ItemQueued) and event.stage not in TERMINAL_STAGES | {Stage.QUEUED}:
            self._row(event.key)
        elif isinstance(event, StageChanged) and event.new in TERMINAL_STAGES:
            self._drop(event.key)
        elif isinstance(event, StageChanged) and (task := self._row(event.key)) is not None:
            # No progress known yet (budget-aware polling may not ask): a pulsing bar.
            p.update(
                task, description=self._describe(event.key), completed=0, total=None, detail=""
            )
        elif isinstance(event, ItemProgress) and task is not None:
            if event.progress:
                p.update(task, completed=event.progress, total=100, detail=f"{event.progress:.0f}%")
            else:  # a service that tells its state only (MediaCrush)
                p.update(task, detail=event.state)
        elif isinstance(event, DownloadProgress):
            self._transfer(event.key, event.done, event.total)
        elif isinstance(event, ItemDone | ItemFailed):
            self._drop(event.key)
            p.advance(self._overall)
            if isinstance(event, ItemDone) and details:
                what = f"{len(details)} file{'' if len(details) == 1 else 's'}"
                remote = f"{item.remote_id}, " if item is not None and item.remote_id else ""
                p.console.print(f"done {display_name(event.key)}: {remote}{what}", highlight=False)
            if isinstance(event, ItemFailed):
                word = "parked" if event.parked else "stopped" if event.resumable else "failed"
                p.console.print(
                    f"[red]{word}[/red] {display_name(event.key)}: "
                    f"{event.error_code}: {event.error_message}",
                    markup=True,
                    highlight=False,
                )
        elif isinstance(event, BatchDone):
            name = f"{self._name} interrupted" if event.interrupted else self._name
            p.update(self._overall, description=name)
        self._show_counts()


def make_renderer(*, tty: bool | None = None, wording: Wording | None = None) -> Renderer:
    """Rich bars when stdout is a terminal, plain (or tab-separated) lines otherwise."""
    wording = wording or Wording()
    if tty is None:
        tty = sys.stdout.isatty()
    if tty:
        return RichRenderer(wording=wording)
    return TabRenderer(wording=wording) if wording.tabs else PlainRenderer(wording=wording)


def print_summary(
    report: Report,
    *,
    tty: bool | None = None,
    stream: IO[str] | None = None,
    title: str = "summary",
) -> None:
    """The end-of-batch table (`Report.rows`: every item, or on a terminal past 40 those not done),
    then the totals."""
    tty = sys.stdout.isatty() if tty is None else tty
    rows = report.rows()
    if tty and len(rows) > _MAX_TABLE:
        rows, title = [row for row in rows if row[1] != "done"], f"{title}: items not done"
    header = ("input", "outcome", "output", "size", "reason")
    print_rows(header, rows, title=title, tty=tty, stream=stream, red=lambda row: row[1] != "done")
    print(
        report.totals_text() if tty else f"summary: {report.totals_text()}", file=stream, flush=True
    )
