"""The end of a batch: per-item outcomes for the summary table and the `--report FILE` JSON.

Built from the journal's items (the source of truth), unstructured with cattrs. It carries no secrets: no
credentials, no staging tokens, and the user:password part of an input URL is masked.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import cattrs

from ._events import Event, ItemDone, ItemFailed, ItemQueued, StageChanged
from ._stages import TERMINAL_STAGES, Item, Stage

__all__ = [
    "CALLS_PER_ITEM",
    "Report",
    "ReportItem",
    "Tally",
    "build_report",
    "display_name",
    "duration_text",
    "redact_url",
    "size_text",
]

CALLS_PER_ITEM: Final = 3.3
"""API requests an item costs in polling mode (B1, Recuro): the ETA's rate-budget bound."""

_converter = cattrs.Converter()


@attrs.frozen
class ReportItem:
    """One item's outcome.

    Attributes:
        input: the input as given (URL credentials masked).
        outcome: `done`, `failed`, `parked` (a person must decide) or `pending` (a rerun continues it).
        stage: the stage the item ended in.
        output_path: the restored file (for done items).
        size: its size in bytes.
        sha256: its checksum.
        remote_id: the service's id for the item's media.
        remote_deleted: the media was deleted from the account.
        attempts: reruns of the item (after a failure or a lost output).
        error_code: the reason of a failure (the service's error code, or ours).
        error_message: a readable message.
        stages: when each stage was entered (ISO 8601, UTC).
        seconds: from the first recorded stage to the last.
    """

    input: str
    outcome: str
    stage: str
    output_path: str | None
    size: int | None
    sha256: str | None
    remote_id: str | None
    remote_deleted: bool
    attempts: int
    error_code: str | None
    error_message: str | None
    stages: dict[str, str]
    seconds: float | None


@attrs.frozen
class Report:
    """The whole batch: spec, totals and items."""

    service: str
    settings: dict[str, Any]
    generated_at: str
    interrupted: bool
    totals: dict[str, int]
    items: list[ReportItem]

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(_converter.unstructure(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Report:
        """A report read back from `to_json`'s text (a `--report FILE`)."""
        return _converter.structure(json.loads(text), cls)

    def totals_text(self) -> str:
        """`3 done, 1 failed, 0 parked, 0 pending` (and ` (interrupted)`): the summary's last line."""
        t = self.totals
        return (
            f"{t['done']} done, {t['failed']} failed, {t['parked']} parked, {t['pending']} pending"
            f"{' (interrupted)' if self.interrupted else ''}"
        )

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """The summary table: per item its name, outcome, output file name, size and failure reason."""
        return [
            (
                display_name(item.input),
                item.outcome,
                Path(item.output_path).name if item.output_path else "",
                size_text(item.size) if item.outcome == "done" else "",
                f"{item.error_code}: {item.error_message}" if item.error_code else "",
            )
            for item in self.items
        ]

    @property
    def failed(self) -> list[ReportItem]:
        """Items that did not finish (failed, parked or pending)."""
        return [item for item in self.items if item.outcome != "done"]


# resolve the annotations now: `orchestrator/__init__` renames the classes' module for nicer reprs
attrs.resolve_types(ReportItem)
attrs.resolve_types(Report)


def redact_url(text: str) -> str:
    """`text` with the password (and user) of a URL masked; other text unchanged."""
    if "://" not in text or "@" not in text:
        return text
    parts = urllib.parse.urlsplit(text)
    if parts.username is None and parts.password is None:
        return text
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{host}"))


def display_name(key: str) -> str:
    """A short name for an item: the file name of its path or URL (credentials masked)."""
    shown = redact_url(key)  # a URL with no path would show its user:password as its name
    return shown.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or shown


def size_text(n: int | None) -> str:
    """`512 B`, `3.0 MiB`...; empty for an unknown size."""
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def duration_text(seconds: float) -> str:
    """`4m05s`, or `2h07m` past an hour."""
    hours, rest = divmod(max(int(seconds), 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Tally:
    """Where a running batch's items stand, kept from its event stream: what a progress display shows.

    `stages` holds every item not finished yet; `in_flight` the ones something happens to (neither
    queued nor finished); `eta` the time left.
    """

    def __init__(self) -> None:
        self.stages: dict[str, Stage] = {}
        self.total = 0
        self.finished = 0

    def update(self, event: Event) -> None:
        """Count one event."""
        if isinstance(event, ItemQueued):
            self.stages[event.key] = event.stage
            self.total += 1
        elif isinstance(event, StageChanged):
            self.stages[event.key] = event.new
        elif isinstance(event, ItemDone | ItemFailed):
            self.stages.pop(event.key, None)
            self.finished += 1

    def in_flight(self) -> list[str]:
        """The keys of the items something happens to, in the order they were queued."""
        return [k for k, stage in self.stages.items() if stage not in _IDLE]

    def eta(self, elapsed: float | None, rate: float | None) -> float | None:
        """Seconds left: the larger of the pace of finished items so far (`elapsed` seconds for
        `finished`) and the rate budget (`CALLS_PER_ITEM` requests each at `rate` per second); None
        while there is nothing to estimate from, 0 once every item finished."""
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        bound = None if rate is None else left * CALLS_PER_ITEM / rate
        if self.finished and elapsed:
            return max(bound or 0.0, left * elapsed / self.finished)
        return bound

    def progress_text(self, elapsed: float | None, rate: float | None) -> str:
        """`finished/total`, then the ETA (`eta`) while items are left: `3/10  ETA 1m02s`."""
        shown = f"{self.finished}/{self.total}"
        eta = self.eta(elapsed, rate)
        if eta is None or self.finished >= self.total:
            return shown
        return f"{shown}  ETA {duration_text(eta)}"


_IDLE: Final = TERMINAL_STAGES | {Stage.QUEUED}


def _outcome(item: Item) -> str:
    if item.stage is Stage.DONE:
        return "done"
    if item.stage is Stage.FAILED:
        return "failed"
    if item.stage is Stage.PARKED:
        return "parked"
    return "pending"


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat(timespec="milliseconds")


def _report_item(item: Item) -> ReportItem:
    times = sorted(item.timings.values())
    return ReportItem(
        input=redact_url(item.input),
        outcome=_outcome(item),
        stage=item.stage.value,
        output_path=item.output_path if item.stage is Stage.DONE else None,
        size=item.output_size,
        sha256=item.sha256,
        remote_id=item.remote_id,
        remote_deleted=item.remote_deleted,
        attempts=item.attempts,
        error_code=item.error_code if item.stage is not Stage.DONE else None,
        error_message=item.error_message if item.stage is not Stage.DONE else None,
        stages={
            stage: _iso(at) for stage, at in sorted(item.timings.items(), key=lambda kv: kv[1])
        },
        seconds=round(times[-1] - times[0], 3) if len(times) > 1 else None,
    )


def build_report(
    items: Iterable[Item],
    *,
    service: str,
    settings: Mapping[str, Any],
    interrupted: bool = False,
) -> Report:
    """The report of a batch from its items (in batch order)."""
    rows = [_report_item(item) for item in sorted(items, key=lambda item: item.seq)]
    totals = {"done": 0, "failed": 0, "parked": 0, "pending": 0}
    for row in rows:
        totals[row.outcome] += 1
    return Report(
        service=service,
        settings=dict(settings),
        generated_at=_iso(dt.datetime.now(tz=dt.UTC).timestamp()),
        interrupted=interrupted,
        totals=totals,
        items=rows,
    )
