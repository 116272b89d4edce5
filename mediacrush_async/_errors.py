"""The exception tree of `mediacrush_async` (a leaf module: it imports nothing else from the package).

```
MediaCrushError
├── ConfigurationError          insecure or malformed base_url, bad client options
├── InvalidArgumentError        bad input caught before any request (also a ValueError): .field
├── MediaCrushAPIError          an error status from the server: .status_code .error .route
│   ├── InvalidURLError         400: a bad or unreachable URL (also the framework's HTML 400 page)
│   ├── NotOwnerError           401: the hash was uploaded from another address
│   ├── NotFoundError           404: no such hash (or a URL upload whose source said 404)
│   ├── TooLargeError           413: an album over 1024 items, a URL upload over 50 MB, a body nginx refused
│   ├── UnsupportedMediaError   415: an album where a file is needed, an unknown flag, a status of an album
│   ├── RateLimitedError        420: the per-address upload byte budget is spent: .retry_after
│   └── ServerError             5xx: the application's HTML 500 page or a front server's error
├── ResponseFormatError         a reply the document and the server never give: .path_errors
├── WaitTimeoutError            wait() ran out of time (also a TimeoutError): .hash .last_status
├── TransportError              connect/read failure after retries: .request_sent
└── DownloadError               a download that cannot complete; the .part file is kept: .reason
    ├── DiskFullError           the disk filled up (also an OSError, errno ENOSPC): .path .needed_bytes
    └── DestinationExistsError  the final file exists; never replaced without overwrite=True
                                (also a FileExistsError): .path
```
Statuses without a class of their own (403 after the service closed, 408, 414...) raise
`MediaCrushAPIError` itself. Errors carry typed attributes, never a request, a response or headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from _clientkit._errorbases import (
    DestinationExistsBase,
    DiskFullBase,
    DownloadErrorBase,
    InvalidArgumentBase,
    TransportErrorBase,
)

__all__ = [
    "ConfigurationError",
    "DestinationExistsError",
    "DiskFullError",
    "DownloadError",
    "InvalidArgumentError",
    "InvalidURLError",
    "MediaCrushAPIError",
    "MediaCrushError",
    "NotFoundError",
    "NotOwnerError",
    "RateLimitedError",
    "ResponseFormatError",
    "ServerError",
    "TooLargeError",
    "TransportError",
    "UnsupportedMediaError",
    "WaitTimeoutError",
]


class MediaCrushError(Exception):
    """Base of every error this package raises."""


class ConfigurationError(MediaCrushError):
    """The client cannot be configured as asked (insecure or malformed base URL, bad options)."""


class InvalidArgumentError(MediaCrushError, InvalidArgumentBase):
    """An argument is invalid; raised before any request is sent. `field` names the argument."""


class MediaCrushAPIError(MediaCrushError):
    """The server answered with an error status; the message says what the status means where the API
    document says it (`reason`).

    Attributes:
        status_code: the real status (the body's `x-status` in X-CORS-Status mode).
        error: the body's `error` value (usually the same code), or None for a non-JSON page.
        route: which call failed (e.g. "upload_file"), for messages and logs.
        body_excerpt: the start of a non-JSON error page, or "".
    """

    reason: ClassVar[str] = ""

    def __init__(
        self,
        *,
        status_code: int,
        error: object = None,
        route: str | None = None,
        body_excerpt: str = "",
    ) -> None:
        where = f" ({route})" if route else ""
        reason = f": {self.reason}" if self.reason else ""
        page = f": {body_excerpt!r}" if body_excerpt else ""
        super().__init__(f"HTTP {status_code}{where}{reason}{page}")
        self.status_code = status_code
        self.error = error
        self.route = route
        self.body_excerpt = body_excerpt


class InvalidURLError(MediaCrushAPIError):
    """400: the URL is invalid or could not be fetched, or a required field was missing."""


class NotOwnerError(MediaCrushAPIError):
    """401: only the address that uploaded a hash may delete it or change its flags."""

    reason: ClassVar[str] = "refused: only the address that uploaded it may do this"


class NotFoundError(MediaCrushAPIError):
    """404: there is no file or album with that hash (or the URL's source answered 404)."""

    reason: ClassVar[str] = "no such file or album"


class TooLargeError(MediaCrushAPIError):
    """413: an album over 1024 items, a URL upload over 50 MB, or a body the front server refused."""

    reason: ClassVar[str] = "too large"


class UnsupportedMediaError(MediaCrushAPIError):
    """415: an album item that is not a file, an unknown flag, or the status of an album."""

    reason: ClassVar[str] = "not a file (an album?)"


class RateLimitedError(MediaCrushAPIError):
    """420: the upload byte budget of this address is spent; `retry_after` is the client's pause, if known."""

    reason: ClassVar[str] = "the upload budget of this address is spent; try again later"

    def __init__(
        self,
        *,
        status_code: int,
        error: object = None,
        route: str | None = None,
        body_excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            status_code=status_code, error=error, route=route, body_excerpt=body_excerpt
        )
        self.retry_after = retry_after


class ServerError(MediaCrushAPIError):
    """5xx: the application failed (its HTML 500 page) or a front server did."""


class ResponseFormatError(MediaCrushError):
    """A reply that is not valid for its route (bad JSON, wrong types); `path_errors` name the fields."""

    def __init__(
        self, message: str, *, path_errors: Sequence[str] = (), route: str | None = None
    ) -> None:
        detail = "; ".join(path_errors)
        where = f" ({route})" if route else ""
        super().__init__(f"{message}{where}{': ' + detail if detail else ''}")
        self.path_errors = tuple(path_errors)
        self.route = route


class WaitTimeoutError(MediaCrushError, TimeoutError):
    """`wait()` gave up before the hash reached a terminal status; `last_status` is the last one seen."""

    def __init__(self, *, hash: str, last_status: str | None, timeout: float) -> None:  # noqa: A002
        super().__init__(
            f"{hash} did not finish processing within {timeout:g} s (last status: {last_status})"
        )
        self.hash = hash
        self.last_status = last_status
        self.timeout = timeout


class TransportError(MediaCrushError, TransportErrorBase):
    """The request failed on the network after retries; `request_sent` tells if the server may have it."""

    def __init__(self, message: str, *, request_sent: bool, route: str | None = None) -> None:
        super().__init__(message, request_sent=request_sent)
        self.route = route


class DownloadError(MediaCrushError, DownloadErrorBase):
    """A download failed its integrity checks; the partial file is kept for a later resume."""


class DiskFullError(DownloadError, DiskFullBase):
    """The disk (or quota) filled up during a download; the `.part` is kept for a resume after freeing space.

    `path` is the file that was being written, `needed_bytes` how many more bytes the download needs
    (None if the size is unknown). Also an `OSError` with `errno.ENOSPC`.
    """


class DestinationExistsError(DownloadError, DestinationExistsBase):
    """The download's final file exists; it is never replaced unless `overwrite=True` is passed."""
