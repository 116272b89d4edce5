"""The end of a batch: per-item outcomes for the summary table and the `--report FILE` JSON.

Built from the journal's items (the source of truth), unstructured with cattrs. It carries no secrets: no
credentials, no staging tokens, and the user:password part of an input URL is masked.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import cattrs

from ._stages import Item, Stage

__all__ = ["Report", "ReportItem", "build_report", "redact_url"]

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
