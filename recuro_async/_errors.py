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
└── DownloadError             integrity failure of a download; the .part file is kept
```
Errors carry typed attributes and never a request, response or header (they hold the secret).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigurationError",
    "DownloadError",
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


class InvalidArgumentError(RecuroError, ValueError):
    """An argument is invalid; raised before any request is sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


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


class TransportError(RecuroError):
    """The request failed on the network after retries; `request_sent` tells if the server may have it."""

    def __init__(self, message: str, *, request_sent: bool, action: str | None = None) -> None:
        super().__init__(message)
        self.request_sent = request_sent
        self.action = action


class DownloadError(RecuroError):
    """A download failed its integrity checks; the partial file is kept for a later resume."""

    def __init__(self, reason: str, *, part_path: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.part_path = part_path


class WaitTimeoutError(RecuroError, TimeoutError):
    """`wait_for` gave up before the media reached the state it waited for."""

    def __init__(self, *, file_id: str, state: str, last: str) -> None:
        super().__init__(
            f"{file_id!r} did not reach {state} in time (last state: {last or 'unknown'})"
        )
        self.file_id = file_id
        self.state = state
        self.last = last
