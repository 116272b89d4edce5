"""The one error table of `mediacrush_async`: which exception a status or a shared failure becomes.

`STATUS_ERRORS` is read by `_protocol` for every error reply (JSON bodies and HTML pages alike, in both
status modes), by `_client` for its retry decisions and, through the `HTTPStatusFailure` row, for a
download's error status; `FAILURE_ERRORS` by `_client` at its two I/O boundaries (`_send`, `download`)
through `_clientkit._errormap.translating`. Pure data and small builders; no I/O.
"""

from __future__ import annotations

from typing import Final

from _clientkit._errormap import Call, FailureTable, StatusRow, status_row
from _clientkit._failures import (
    ClientkitFailure,
    DestinationExistsFailure,
    DiskFullFailure,
    DownloadFailure,
    HTTPStatusFailure,
    ResponseTooLargeFailure,
    TransportFailure,
)

from ._errors import (
    DestinationExistsError,
    DiskFullError,
    DownloadError,
    InvalidURLError,
    MediaCrushAPIError,
    MediaCrushError,
    NotFoundError,
    NotOwnerError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    TooLargeError,
    TransportError,
    UnsupportedMediaError,
)

__all__ = ["FAILURE_ERRORS", "STATUS_ERRORS", "status_error", "status_error_class"]

# Every error status, first matching row wins (the server's `error` value repeats the status, so the
# status alone decides).
STATUS_ERRORS: Final[tuple[StatusRow[type[MediaCrushAPIError]], ...]] = (
    StatusRow(InvalidURLError, status=400),
    StatusRow(NotOwnerError, status=401),
    StatusRow(NotFoundError, status=404),
    StatusRow(TooLargeError, status=413),
    StatusRow(UnsupportedMediaError, status=415),
    StatusRow(RateLimitedError, status=420),
    StatusRow(ServerError, status=range(500, 600)),
)
# no row (403 after the service closed, 408, 414...): the base class itself
OTHER_STATUS: Final = MediaCrushAPIError


def status_error_class(status: int) -> type[MediaCrushAPIError]:
    """The exception class of an error status."""
    row = status_row(STATUS_ERRORS, status, None)
    return OTHER_STATUS if row is None else row.result


def status_error(
    status: int, *, error: object, route: str, body_excerpt: str
) -> MediaCrushAPIError:
    """The exception of an error status; `error` is the body's value, `body_excerpt` a page's start."""
    return status_error_class(status)(
        status_code=status, error=error, route=route, body_excerpt=body_excerpt
    )


def _transport(failure: TransportFailure, call: Call) -> MediaCrushError:
    return TransportError(
        f"{call.label} failed: {failure}", request_sent=failure.request_sent, route=call.name
    )


def _http_status(failure: HTTPStatusFailure, call: Call) -> MediaCrushError:
    # a listed file may not exist yet (entries appear before processing makes them): 404, NotFoundError
    return status_error(
        failure.status_code, error=None, route=call.name, body_excerpt=failure.body_excerpt
    )


def _disk_full(failure: DiskFullFailure, _: Call) -> MediaCrushError:
    return DiskFullError(failure.reason, path=failure.path, needed_bytes=failure.needed_bytes)


def _destination_exists(failure: DestinationExistsFailure, _: Call) -> MediaCrushError:
    return DestinationExistsError(failure.reason, path=failure.path)


def _download(failure: DownloadFailure, _: Call) -> MediaCrushError:
    return DownloadError(failure.reason, part_path=failure.part_path)


def _too_large(failure: ResponseTooLargeFailure, call: Call) -> MediaCrushError:
    return ResponseFormatError(str(failure), route=call.name)


def _other(failure: ClientkitFailure, call: Call) -> MediaCrushError:
    if call.name == "download":
        return DownloadError(str(failure))
    return ResponseFormatError(str(failure), route=call.name)


# Every shared failure `_clientkit` raises; the most specific class of a failure picks its row.
FAILURE_ERRORS: Final[FailureTable] = {
    TransportFailure: _transport,
    ResponseTooLargeFailure: _too_large,
    DownloadFailure: _download,
    HTTPStatusFailure: _http_status,
    DiskFullFailure: _disk_full,
    DestinationExistsFailure: _destination_exists,
    ClientkitFailure: _other,
}
