"""MediaCrush's error table walked row by row: each status row (in both status modes, JSON bodies and HTML
pages alike) and each shared-failure row gives its exception class, with a message naming the status;
every row is exercised by a case here.

MediaCrush has no credentials (the API is anonymous), so there is no secret to mask; what holds for every
mapped exception is that it carries plain values only, never a request, a response or headers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

import _clientkit._failures as failures
from _clientkit._errormap import Call, StatusRow, most_specific, status_row, translating
from _clientkit._transport import ResponseParts, Retry
from mediacrush_async import (
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
from mediacrush_async._client import _classify, _classify_upload
from mediacrush_async._errormap import FAILURE_ERRORS, STATUS_ERRORS
from mediacrush_async._protocol import decode, raise_for_status

# status -> (exception class, retried as: by every call, by an upload)
STATUS_CASES = [
    (400, InvalidURLError, None, None),
    (401, NotOwnerError, None, None),
    (404, NotFoundError, None, None),
    (413, TooLargeError, None, None),
    (415, UnsupportedMediaError, None, None),
    (420, RateLimitedError, None, "refusal"),
    (500, ServerError, "retry", "retry"),
    (502, ServerError, "retry", "retry"),
    (599, ServerError, "retry", "retry"),
    (403, MediaCrushAPIError, None, None),
    (408, MediaCrushAPIError, None, None),
    (409, MediaCrushAPIError, None, None),
    (414, MediaCrushAPIError, None, None),
    (302, MediaCrushAPIError, None, None),
]
RETRY = {"retry": Retry(), "refusal": Retry(refusal=True), None: None}


def _replies(status: int) -> Iterator[tuple[str, int, bytes]]:
    """The same error as a JSON body, an HTML page, and wrapped in a 200 (X-CORS-Status mode)."""
    yield "json", status, json.dumps({"error": status}).encode()
    yield "html", status, f"<html><h1>{status} Oops</h1></html>".encode()
    yield "x-status", 200, json.dumps({"x-status": status, "error": status}).encode()


@pytest.mark.parametrize(
    ("status", "cls", "retried", "upload_retried"),
    STATUS_CASES,
    ids=[str(c[0]) for c in STATUS_CASES],
)
def test_each_status_raises_its_class_in_every_form(status, cls, retried, upload_retried):
    """An error status raises exactly its row's class, naming the status and the route, in all forms."""
    for form, wire_status, body in _replies(status):
        with pytest.raises(MediaCrushAPIError) as info:
            raise_for_status(decode(wire_status, body, route="info"), route="info")
        assert type(info.value) is cls, form
        assert f"HTTP {status} (info)" in str(info.value), form
        assert info.value.status_code == status
        assert info.value.route == "info"
        if form == "html":
            assert "Oops" in info.value.body_excerpt
        else:
            assert info.value.error == status
        parts = ResponseParts(wire_status, httpx.Headers(), body)
        assert _classify(parts) == RETRY[retried], form
        assert _classify_upload(parts) == RETRY[upload_retried], form


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (401, "only the address that uploaded it may do this"),
        (404, "no such file or album"),
        (413, "too large"),
        (415, "not a file (an album?)"),
        (420, "the upload budget of this address is spent"),
    ],
)
def test_a_documented_status_says_what_it_means(status, reason):
    """The message reads on its own (the commands print it as it is): the status, the call, the meaning."""
    error = decode(status, json.dumps({"error": status}).encode(), route="delete")
    with pytest.raises(MediaCrushAPIError, match=r"^HTTP \d+ \(delete\): ") as info:
        raise_for_status(error, route="delete")
    assert reason in str(info.value)


def test_every_status_row_and_the_default_is_walked_by_a_case():
    """Adding a row without a case here fails: the cases reach every row and the default."""
    reached: set[StatusRow[object] | None] = {
        status_row(STATUS_ERRORS, status, None) for status, *_ in STATUS_CASES
    }
    assert reached == {*STATUS_ERRORS, None}


CALL = Call("info", "info to https://mc.test")
DOWNLOAD = Call("download", "download")

# (failure, call) -> (exception class, attributes it carries, fragments of its message)
FAILURE_CASES = [
    (
        failures.TransportFailure("ConnectError: could not send", request_sent=False),
        CALL,
        TransportError,
        {"request_sent": False, "route": "info"},
        ["info to https://mc.test failed", "ConnectError"],
    ),
    (
        failures.TransportFailure("ReadError: the connection failed", request_sent=True),
        DOWNLOAD,
        TransportError,
        {"request_sent": True, "route": "download"},
        ["download failed: ReadError"],
    ),
    (
        failures.ResponseTooLargeFailure(2048),
        CALL,
        ResponseFormatError,
        {"route": "info"},
        ["larger than 2048 bytes", "(info)"],
    ),
    (
        failures.HTTPStatusFailure(404, "not made yet", part_path="/t/a.part"),
        DOWNLOAD,
        NotFoundError,
        {"status_code": 404, "body_excerpt": "not made yet", "route": "download", "error": None},
        ["HTTP 404 (download)", "not made yet"],
    ),
    (
        failures.LinkExpiredFailure(401, "", part_path="/t/a.part"),
        DOWNLOAD,
        NotOwnerError,
        {"status_code": 401, "route": "download"},
        ["HTTP 401 (download)"],
    ),
    (
        failures.DiskFullFailure("/t/a.part", None),
        DOWNLOAD,
        DiskFullError,
        {"path": "/t/a.part", "needed_bytes": None, "part_path": "/t/a.part", "errno": 28},
        ["no space left", "unknown number"],
    ),
    (
        failures.DestinationExistsFailure("/t/a.mp4"),
        DOWNLOAD,
        DestinationExistsError,
        {"path": "/t/a.mp4", "errno": 17},
        ["exists", "overwrite=True"],
    ),
    (
        failures.DownloadFailure("the size does not match", part_path="/t/a.part"),
        DOWNLOAD,
        DownloadError,
        {"reason": "the size does not match", "part_path": "/t/a.part"},
        ["the size does not match"],
    ),
    (
        failures.ClientkitFailure("something new"),
        DOWNLOAD,
        DownloadError,
        {"part_path": None},
        ["something new"],
    ),
    (
        failures.ClientkitFailure("something new"),
        CALL,
        ResponseFormatError,
        {"route": "info"},
        ["something new"],
    ),
]


@pytest.mark.parametrize(
    ("failure", "call", "cls", "attributes", "names"),
    FAILURE_CASES,
    ids=[f"{type(c[0]).__name__}-{c[1].name}" for c in FAILURE_CASES],
)
def test_each_failure_case_raises_its_class_from_the_failure(failure, call, cls, attributes, names):
    """A shared failure at a boundary becomes exactly its row's class, raised from the failure."""
    with pytest.raises(MediaCrushError) as info, translating(FAILURE_ERRORS, call):
        raise failure
    assert type(info.value) is cls
    assert info.value.__cause__ is failure
    for attribute, value in attributes.items():
        assert getattr(info.value, attribute) == value
    for name in names:
        assert name in str(info.value)
    plain = (str, int, float, bool, type(None), tuple)
    assert all(isinstance(value, plain) for value in vars(info.value).values())


def test_every_failure_row_is_walked_and_every_shared_failure_has_a_row():
    """The cases reach every row, and every failure `_clientkit` exports maps to a MediaCrush error."""
    reached = {most_specific(FAILURE_ERRORS, failure) for failure, *_ in FAILURE_CASES}
    assert reached == set(FAILURE_ERRORS.values())
    for name in failures.__all__:
        failure_class = getattr(failures, name)
        assert most_specific(FAILURE_ERRORS, failure_class.__new__(failure_class)) is not None
