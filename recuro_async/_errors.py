"""The exception tree of `recuro_async` (a leaf module: it imports nothing else from the package).

```
RecuroError
├── ConfigurationError        missing credentials, insecure base_url
├── InvalidArgumentError      bad input caught before any request (also a ValueError)
├── RecuroAPIError            .status_code .error_code .error_message .action
│   ├── RateLimitedError      .retry_after (seconds or None)
│   ├── MediaNotFoundError    an unknown or deleted file_id
│   └── ServerError           status 500
├── RecuroHTTPError           a non-API error status (no error_code body): .status_code .body_excerpt
├── ResponseFormatError       a 200 whose body does not match the document: .path_errors
├── TransportError            connect/read failure after retries; .request_sent
├── WaitTimeoutError          wait_for() ran out of time (also a TimeoutError)
└── DownloadError             a download that cannot complete; the .part file is kept: .part_path
    ├── DownloadLinkExpiredError  401/403/410: the link expired (also a RecuroHTTPError); not retried
    ├── DiskFullError             the disk filled up (also an OSError, errno ENOSPC): .path .needed_bytes
    └── DestinationExistsError    the final file exists; never replaced without overwrite=True
                                  (also a FileExistsError): .path
```
Errors carry typed attributes and never a request, response or header (they hold the secret).
"""

from __future__ import annotations

from collections.abc import Sequence

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
    "DownloadLinkExpiredError",
    "InvalidArgumentError",
    "MediaNotFoundError",
    "RateLimitedError",
    "RecuroAPIError",
    "RecuroError",
    "RecuroHTTPError",
    "ResponseFormatError",
    "ServerError",
    "TransportError",
    "WaitTimeoutError",
]


class RecuroError(Exception):
    """Base of every error this package raises."""


class ConfigurationError(RecuroError):
    """The client cannot be configured as asked (missing credentials, insecure base URL)."""


class InvalidArgumentError(RecuroError, InvalidArgumentBase):
    """An argument is invalid; raised before any request is sent."""


class RecuroAPIError(RecuroError):
    """The API answered with an error body `{error_code, error_message}`."""

    def __init__(
        self, *, status_code: int, error_code: str, error_message: str, action: str | None = None
    ) -> None:
        where = f" ({action})" if action else ""
        super().__init__(f"HTTP {status_code} {error_code}: {error_message}{where}")
        self.status_code = status_code
        self.error_code = error_code
        self.error_message = error_message
        self.action = action


class RateLimitedError(RecuroAPIError):
    """The service refused the call for its rate limit; `retry_after` is its requested wait, if any."""

    def __init__(
        self,
        *,
        status_code: int,
        error_code: str,
        error_message: str,
        action: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            status_code=status_code,
            error_code=error_code,
            error_message=error_message,
            action=action,
        )
        self.retry_after = retry_after


class MediaNotFoundError(RecuroAPIError):
    """The file_id is unknown to the service or was deleted."""


class ServerError(RecuroAPIError):
    """The API reported a server error (HTTP 500)."""


class RecuroHTTPError(RecuroError):
    """An error status without an API error body: it came from a web server or proxy, not the API."""

    def __init__(self, *, status_code: int, body_excerpt: str, action: str | None = None) -> None:
        where = f" ({action})" if action else ""
        super().__init__(f"HTTP {status_code} from the web server{where}: {body_excerpt!r}")
        self.status_code = status_code
        self.body_excerpt = body_excerpt
        self.action = action


class ResponseFormatError(RecuroError):
    """A response the document does not allow (bad JSON, wrong types); `path_errors` name the fields."""

    def __init__(
        self, message: str, *, path_errors: Sequence[str] = (), action: str | None = None
    ) -> None:
        detail = "; ".join(path_errors)
        super().__init__(f"{message}{': ' + detail if detail else ''}")
        self.path_errors = tuple(path_errors)
        self.action = action


class TransportError(RecuroError, TransportErrorBase):
    """The request failed on the network after retries; `request_sent` tells if the server may have it."""

    def __init__(self, message: str, *, request_sent: bool, action: str | None = None) -> None:
        super().__init__(message, request_sent=request_sent)
        self.action = action


class DownloadError(RecuroError, DownloadErrorBase):
    """A download failed its integrity checks; the partial file is kept for a later resume."""


class DownloadLinkExpiredError(DownloadError, RecuroHTTPError):
    """A download answered 401, 403 or 410: the restored file's URL (a signed link) no longer works.

    Not retried on the same URL. The `.part` and its sidecar are kept: get a fresh URL for the same file
    (GetProgress or ListMedia) and resume with `download(new_url, dest, reissue_of=old_url)`, which
    continues from the bytes on disk when the file's validator still matches (checked with If-Range).
    """

    def __init__(self, *, status_code: int, body_excerpt: str, part_path: str | None) -> None:
        reason = f"HTTP {status_code}: the download link has expired or no longer grants access"
        RecuroError.__init__(self, f"{reason}: {body_excerpt!r}" if body_excerpt else reason)
        self.reason = reason
        self.part_path = part_path
        self.status_code = status_code
        self.body_excerpt = body_excerpt
        self.action: str | None = "download"


class DiskFullError(DownloadError, DiskFullBase):
    """The disk (or quota) filled up during a download; the `.part` is kept for a resume after freeing space.

    `path` is the file that was being written, `needed_bytes` how many more bytes the download needs
    (None if the size is unknown). Also an `OSError` with `errno.ENOSPC`.
    """


class DestinationExistsError(DownloadError, DestinationExistsBase):
    """The download's final file exists; it is never replaced unless `overwrite=True` is passed."""


class WaitTimeoutError(RecuroError, TimeoutError):
    """`wait_for` gave up before the media reached the state it waited for."""

    def __init__(self, *, file_id: str, state: str, last: str) -> None:
        super().__init__(
            f"{file_id!r} did not reach {state} in time (last state: {last or 'unknown'})"
        )
        self.file_id = file_id
        self.state = state
        self.last = last
