"""The emulator's request log, which tests and benchmarks read (SPEC section 4, "Observable")."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class LogEntry:
    """One request as the emulator saw it.

    Attributes:
        time: Seconds since the emulator was created (monotonic clock, not scaled).
        client: The client address the server used (the peer, or `X-Real-IP` from loopback).
        route: Method and route template, e.g. `POST /api/upload/file` or `GET /<file>`.
        hash: The file or album id the request was about (for uploads: the resulting id), if any.
        status: The API's status code, e.g. 420 even when `X-CORS-Status` sent it as 200.
        wire_status: The HTTP status actually sent.
        fault: The injected fault, if any: `error`, `drop`, `truncate`.
        size: Bytes counted against the upload limit by this request (0 for other routes).
    """

    time: float
    client: str
    route: str
    hash: str | None
    status: int
    wire_status: int
    fault: str | None = None
    size: int = 0

    def to_json(self) -> dict[str, Any]:
        """The entry as `/_emulator/log` serves it."""
        return attrs.asdict(self)


class RequestLog:
    """Append-only list of `LogEntry`, oldest first."""

    def __init__(self) -> None:
        self._entries: list[LogEntry] = []

    def append(self, entry: LogEntry) -> None:
        """Record one request."""
        self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        """A copy of the entries, oldest first."""
        return list(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
