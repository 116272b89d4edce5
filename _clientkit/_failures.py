"""Neutral failures raised by shared code; each client maps them to its own error classes.

```
ClientkitFailure
├── TransportFailure   .request_sent: could the server have received the request?
└── DownloadFailure    .reason: an integrity failure of a download (size, Content-Range, validators)
    ├── HTTPStatusFailure  .status_code .body_excerpt: a download answered with an error status
    │   └── LinkExpiredFailure  401/403/410: the URL (a signed link) no longer grants access
    ├── DiskFullFailure    .path .needed_bytes: the disk filled up while writing the `.part`
    └── DestinationExistsFailure  .path: the final file exists and `overwrite` was not given
```
"""

from __future__ import annotations

__all__ = [
    "ClientkitFailure",
    "DestinationExistsFailure",
    "DiskFullFailure",
    "DownloadFailure",
    "HTTPStatusFailure",
    "LinkExpiredFailure",
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


class LinkExpiredFailure(HTTPStatusFailure):
    """A download answered 401, 403 or 410: the link (typically a signed, expiring URL) is no longer valid.

    Never retried on the same URL; the `.part` and its sidecar are kept, so the caller can fetch a fresh
    URL for the same resource and resume with `download_file(new_url, ..., reissue_of=old_url)`.
    """


class DiskFullFailure(DownloadFailure):
    """The disk (or quota) filled up while writing a download; the `.part` is kept for a resume.

    `path` is the file being written; `needed_bytes` is how many more bytes the download needs (None when
    the size is not known).
    """

    def __init__(self, path: str, needed_bytes: int | None) -> None:
        need = "an unknown number of" if needed_bytes is None else f"{needed_bytes}"
        super().__init__(
            f"no space left on the device writing {path!r}: {need} more bytes needed",
            part_path=path,
        )
        self.path = path
        self.needed_bytes = needed_bytes


class DestinationExistsFailure(DownloadFailure):
    """The final file of a download exists already; it is never replaced unless `overwrite=True`."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path!r} exists; refusing to replace it (pass overwrite=True to replace it)"
        )
        self.path = path
