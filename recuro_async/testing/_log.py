"""The request log: one entry per request the emulator answered, readable from Python and as JSON."""

from __future__ import annotations

import json
from typing import Any

import attrs


@attrs.frozen
class LogEntry:
    """One answered request.

    Attributes:
        time: arrival time in seconds on the emulator's monotonic clock (the rate limiter's clock).
        client: the peer address as "host:port".
        action: the canonical action name, "download" for download.php, or the raw (unknown or missing: "")
            action string of a refused request.
        file_id: the media concerned (the new id for UploadMedia), or None.
        status: the HTTP status code sent.
    """

    time: float
    client: str
    action: str
    file_id: str | None
    status: int

    def to_json(self) -> dict[str, Any]:
        """Return the entry as a JSON object with exactly the five keys."""
        return {
            "time": self.time,
            "client": self.client,
            "action": self.action,
            "file_id": self.file_id,
            "status": self.status,
        }


class RequestLog:
    """Entries in arrival order (a request is logged when answered, placed by its arrival time)."""

    def __init__(self) -> None:
        self._entries: list[LogEntry] = []
        self._sorted = True

    def append(self, entry: LogEntry) -> None:
        """Record an answered request."""
        if self._entries and entry.time < self._entries[-1].time:
            self._sorted = False
        self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        """Return a copy of the entries, oldest first."""
        if not self._sorted:
            self._entries.sort(key=lambda e: e.time)
            self._sorted = True
        return list(self._entries)

    def to_json_bytes(self) -> bytes:
        """Return the log as a JSON array of objects, oldest first."""
        return json.dumps([e.to_json() for e in self.entries()]).encode()

    def __len__(self) -> int:
        return len(self._entries)
