"""Neutral failures raised by shared code; each client maps them to its own error classes.

```
ClientkitFailure
├── TransportFailure   .request_sent: could the server have received the request?
└── DownloadFailure    .reason: an integrity failure of a download (size, Content-Range, validators)
    └── HTTPStatusFailure  .status_code .body_excerpt: a download answered with an error status
```
"""

from __future__ import annotations

__all__ = [
    "ClientkitFailure",
    "DownloadFailure",
    "HTTPStatusFailure",
    "ResponseTooLargeFailure",
    "TransportFailure",
]


class ClientkitFailure(Exception):
    """Base of the shared failures; never escapes a client's public API unmapped."""


class TransportFailure(ClientkitFailure):
    """A connect or read failure; `request_sent` tells whether the server may have received it."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class DownloadFailure(ClientkitFailure):
    """A download that cannot be completed safely; the `.part` file is kept for a later resume."""

    def __init__(self, reason: str, *, part_path: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.part_path = part_path


class ResponseTooLargeFailure(ClientkitFailure):
    """A response body larger than the caller's limit; the connection was closed unread."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the response body is larger than {limit} bytes")
        self.limit = limit


class HTTPStatusFailure(DownloadFailure):
    """A download refused with an HTTP status (4xx other than 408/429, or 5xx/429 after the retries).

    A `DownloadFailure`, so code that maps only `DownloadFailure` still catches it; a client that has an
    HTTP-status error class catches this one first. `body_excerpt` is short and already redacted.
    """

    def __init__(
        self, status_code: int, body_excerpt: str = "", *, part_path: str | None = None
    ) -> None:
        super().__init__(f"HTTP {status_code}", part_path=part_path)
        self.status_code = status_code
        self.body_excerpt = body_excerpt
