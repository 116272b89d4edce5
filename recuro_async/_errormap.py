"""The one error table of `recuro_async`: which exception a status, an error code or a shared failure becomes.

`STATUS_ERRORS` is read by `_protocol` for every non-200 response (and for the retry decision);
`FAILURE_ERRORS` by `_client` at its two I/O boundaries (`_call`, `download`) through
`_clientkit._errormap.translating`. Pure data and two small builders; no I/O.
"""

from __future__ import annotations

import re
from typing import Final

from _clientkit._errormap import ANY_CODE, Call, FailureTable, StatusRow, status_row
from _clientkit._failures import (
    ClientkitFailure,
    DestinationExistsFailure,
    DiskFullFailure,
    DownloadFailure,
    HTTPStatusFailure,
    LinkExpiredFailure,
    ResponseTooLargeFailure,
    TransportFailure,
)

from ._errors import (
    DestinationExistsError,
    DiskFullError,
    DownloadError,
    DownloadLinkExpiredError,
    MediaNotFoundError,
    RateLimitedError,
    RecuroAPIError,
    RecuroError,
    RecuroHTTPError,
    ResponseFormatError,
    ServerError,
    TransportError,
)

__all__ = ["FAILURE_ERRORS", "STATUS_ERRORS", "status_error_class"]

# what a status can become: an API error (it has an error_code body) or a web server's error
_ErrorClass = type[RecuroAPIError] | type[RecuroHTTPError]

# error codes that mean "no such media": the document names none, so any code containing "notfound"
# counts, and so do these names of a bad id
NOT_FOUND_CODE: Final = re.compile(
    r"notfound|^(?:unknownfileid|invalidfileid|unknownmedia)$", re.IGNORECASE
)

# Every non-200 response, first matching row wins. `code` is the body's error_code; a response without
# an API error body `{error_code, error_message}` matches only rows without a code pattern.
STATUS_ERRORS: Final[tuple[StatusRow[_ErrorClass], ...]] = (
    StatusRow(RateLimitedError, status=429),  # with or without an API error body
    # a 400 whose error_code contains RateLimit [SPEC 2.2 assumption]
    StatusRow(RateLimitedError, status=400, code=re.compile("ratelimit", re.IGNORECASE)),
    StatusRow(MediaNotFoundError, code=NOT_FOUND_CODE),
    StatusRow(MediaNotFoundError, status=404, code=ANY_CODE),
    StatusRow(ServerError, status=range(500, 1000), code=ANY_CODE),
    StatusRow(RecuroAPIError, code=ANY_CODE),
)
# no row: an error status without an API error body came from a web server or proxy
NO_API_BODY: Final[_ErrorClass] = RecuroHTTPError


def status_error_class(status: int, error_code: str | None) -> _ErrorClass:
    """The exception class of a non-200 response; `error_code` is None without an API error body."""
    row = status_row(STATUS_ERRORS, status, error_code)
    return NO_API_BODY if row is None else row.result


def _transport(failure: TransportFailure, call: Call) -> RecuroError:
    return TransportError(
        f"{call.label} failed: {failure}", request_sent=failure.request_sent, action=call.name
    )


def _link_expired(failure: LinkExpiredFailure, _: Call) -> RecuroError:
    return DownloadLinkExpiredError(
        status_code=failure.status_code,
        body_excerpt=failure.body_excerpt,
        part_path=failure.part_path,
    )


def _http_status(failure: HTTPStatusFailure, call: Call) -> RecuroError:
    return RecuroHTTPError(
        status_code=failure.status_code, body_excerpt=failure.body_excerpt, action=call.name
    )


def _disk_full(failure: DiskFullFailure, _: Call) -> RecuroError:
    return DiskFullError(failure.reason, path=failure.path, needed_bytes=failure.needed_bytes)


def _destination_exists(failure: DestinationExistsFailure, _: Call) -> RecuroError:
    return DestinationExistsError(failure.reason, path=failure.path)


def _download(failure: DownloadFailure, _: Call) -> RecuroError:
    return DownloadError(failure.reason, part_path=failure.part_path)


def _too_large(failure: ResponseTooLargeFailure, call: Call) -> RecuroError:
    return ResponseFormatError(str(failure), action=call.name)


def _other(failure: ClientkitFailure, call: Call) -> RecuroError:
    return DownloadError(str(failure)) if call.name == "download" else RecuroError(str(failure))


# Every shared failure `_clientkit` raises; the most specific class of a failure picks its row.
FAILURE_ERRORS: Final[FailureTable] = {
    TransportFailure: _transport,
    ResponseTooLargeFailure: _too_large,
    DownloadFailure: _download,
    HTTPStatusFailure: _http_status,
    LinkExpiredFailure: _link_expired,
    DiskFullFailure: _disk_full,
    DestinationExistsFailure: _destination_exists,
    ClientkitFailure: _other,
}
