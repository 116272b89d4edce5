"""Recuro's error table walked row by row: each status/error-code row and each shared-failure row gives
its exception class, with a message naming the status or code; every row is exercised by a case here.

Then the redaction check: a server echoing the Authorization header into the body of a response that
falls in any status row (or into a download's error page) never gets it into the mapped exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import respx
from fakeclock import FakeClock

import _clientkit._failures as failures
from _clientkit._errormap import Call, StatusRow, most_specific, status_row, translating
from _clientkit._transport import ResponseParts, Retry
from recuro_async import (
    DestinationExistsError,
    DiskFullError,
    DownloadError,
    DownloadLinkExpiredError,
    MediaNotFoundError,
    RateLimitedError,
    RecuroAPIError,
    RecuroClient,
    RecuroError,
    RecuroHTTPError,
    ResponseFormatError,
    ServerError,
    TransportError,
)
from recuro_async._errormap import FAILURE_ERRORS, STATUS_ERRORS
from recuro_async._protocol import Action, classify, parse_response


def _api(code: str, message: str = "no") -> bytes:
    return json.dumps({"error_code": code, "error_message": message}).encode()


# (status, body, Retry-After) -> (exception class, fragments its message names, retried as)
STATUS_CASES = [
    (
        429,
        _api("TooManyRequests"),
        "7",
        RateLimitedError,
        ["HTTP 429", "TooManyRequests"],
        "refusal",
    ),
    (
        429,
        b"<h1>slow down</h1>",
        "7",
        RateLimitedError,
        ["HTTP 429", "RateLimitExceeded"],
        "refusal",
    ),
    (429, _api("MediaNotFound"), None, RateLimitedError, ["HTTP 429", "MediaNotFound"], "refusal"),
    (
        400,
        _api("RateLimitExceeded"),
        None,
        RateLimitedError,
        ["HTTP 400", "RateLimitExceeded"],
        "refusal",
    ),
    (
        400,
        _api("dailyratelimit"),
        None,
        RateLimitedError,
        ["HTTP 400", "dailyratelimit"],
        "refusal",
    ),
    (
        404,
        _api("RateLimitExceeded"),
        None,
        MediaNotFoundError,
        ["HTTP 404", "RateLimitExceeded"],
        None,
    ),
    (400, _api("MediaNotFound"), None, MediaNotFoundError, ["HTTP 400", "MediaNotFound"], None),
    (400, _api("UnknownFileId"), None, MediaNotFoundError, ["HTTP 400", "UnknownFileId"], None),
    (400, _api("InvalidFileID"), None, MediaNotFoundError, ["HTTP 400", "InvalidFileID"], None),
    (400, _api("xUnknownMedia"), None, RecuroAPIError, ["HTTP 400", "xUnknownMedia"], None),
    (500, _api("FileNotFound"), None, MediaNotFoundError, ["HTTP 500", "FileNotFound"], "retry"),
    (404, _api("Gone"), None, MediaNotFoundError, ["HTTP 404", "Gone"], None),
    (500, _api("InternalError"), None, ServerError, ["HTTP 500", "InternalError"], "retry"),
    (503, _api("Maintenance"), None, ServerError, ["HTTP 503", "Maintenance"], "retry"),
    (400, _api("InvalidFilter"), None, RecuroAPIError, ["HTTP 400", "InvalidFilter"], None),
    (401, _api("Unauthorized"), None, RecuroAPIError, ["HTTP 401", "Unauthorized"], None),
    (404, b"<html>Not Found</html>", None, RecuroHTTPError, ["HTTP 404", "Not Found"], None),
    (502, b"Bad Gateway", None, RecuroHTTPError, ["HTTP 502", "Bad Gateway"], "retry"),
    (400, b'{"error_code": ""}', None, RecuroHTTPError, ["HTTP 400"], None),
    (403, b"", None, RecuroHTTPError, ["HTTP 403"], None),
]


def _parts(status: int, body: bytes, retry_after: str | None) -> ResponseParts:
    headers = httpx.Headers({"Retry-After": retry_after} if retry_after else {})
    return ResponseParts(status, headers, body)


def _code(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    code = data.get("error_code") if isinstance(data, dict) else None
    return code if isinstance(code, str) and code else None


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "cls", "names", "retried"),
    STATUS_CASES,
    ids=[f"{c[0]}-{_code(c[1]) or c[1][:20]!r}" for c in STATUS_CASES],
)
def test_each_status_case_raises_its_class_naming_status_and_code(
    status, body, retry_after, cls, names, retried
):
    """A non-200 response raises exactly its row's class; the message names the status and code."""
    with pytest.raises(RecuroError) as info:
        parse_response(Action.GET_PROGRESS, _parts(status, body, retry_after))
    assert type(info.value) is cls
    for name in names:
        assert name in str(info.value)
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert info.value.action == "GetProgress"  # type: ignore[attr-defined]
    if cls is RateLimitedError:
        assert info.value.retry_after == (float(retry_after) if retry_after else None)  # type: ignore[attr-defined]
    expected = {
        "refusal": Retry(after=float(retry_after) if retry_after else None, refusal=True),
        "retry": Retry(),
        None: None,
    }[retried]
    assert classify(_parts(status, body, retry_after)) == expected


def test_every_status_row_and_the_default_is_walked_by_a_case():
    """Adding a row to the table without a case here fails: the cases reach every row and the default."""
    reached: set[StatusRow[object] | None] = {
        status_row(STATUS_ERRORS, status, _code(body)) for status, body, *_ in STATUS_CASES
    }
    assert reached == {*STATUS_ERRORS, None}


def _all_failure_classes() -> Iterator[type[failures.ClientkitFailure]]:
    for name in failures.__all__:
        yield getattr(failures, name)


CALL = Call("GetProgress", "GetProgress to https://api.test")
DOWNLOAD = Call("download", "download")

# (failure, call) -> (exception class, attributes it carries, fragments of its message)
FAILURE_CASES = [
    (
        failures.TransportFailure("ConnectError: could not send", request_sent=False),
        CALL,
        TransportError,
        {"request_sent": False, "action": "GetProgress"},
        ["GetProgress to https://api.test failed", "ConnectError"],
    ),
    (
        failures.TransportFailure("ReadError: the connection failed", request_sent=True),
        DOWNLOAD,
        TransportError,
        {"request_sent": True, "action": "download"},
        ["download failed: ReadError"],
    ),
    (
        failures.ResponseTooLargeFailure(1024),
        CALL,
        ResponseFormatError,
        {"action": "GetProgress"},
        ["larger than 1024 bytes"],
    ),
    (
        failures.LinkExpiredFailure(410, "gone", part_path="/t/a.part"),
        DOWNLOAD,
        DownloadLinkExpiredError,
        {"status_code": 410, "body_excerpt": "gone", "part_path": "/t/a.part"},
        ["HTTP 410", "expired"],
    ),
    (
        failures.HTTPStatusFailure(404, "no such file", part_path="/t/a.part"),
        DOWNLOAD,
        RecuroHTTPError,
        {"status_code": 404, "body_excerpt": "no such file", "action": "download"},
        ["HTTP 404", "no such file"],
    ),
    (
        failures.DiskFullFailure("/t/a.part", 4096),
        DOWNLOAD,
        DiskFullError,
        {"path": "/t/a.part", "needed_bytes": 4096, "part_path": "/t/a.part", "errno": 28},
        ["no space left", "4096"],
    ),
    (
        failures.DestinationExistsFailure("/t/a.mp4"),
        DOWNLOAD,
        DestinationExistsError,
        {"path": "/t/a.mp4", "errno": 17},
        ["exists", "overwrite=True"],
    ),
    (
        failures.DownloadFailure("Content-Range does not match", part_path="/t/a.part"),
        DOWNLOAD,
        DownloadError,
        {"reason": "Content-Range does not match", "part_path": "/t/a.part"},
        ["Content-Range does not match"],
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
        RecuroError,
        {},
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
    with pytest.raises(RecuroError) as info, translating(FAILURE_ERRORS, call):
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
    """The cases reach every row, and every failure `_clientkit` exports maps to a Recuro error."""
    reached = {most_specific(FAILURE_ERRORS, failure) for failure, *_ in FAILURE_CASES}
    assert reached == set(FAILURE_ERRORS.values())
    for failure_class in _all_failure_classes():
        assert most_specific(FAILURE_ERRORS, failure_class.__new__(failure_class)) is not None


# ---------------------------------------------------------------- redaction

BASE = "https://api.test/api/1.0/"
KEY = "table-key"
SECRET = 'Tb/l"e-5ecret+Q=='
HEADER = f"{KEY}:{SECRET}"
PIECES = (SECRET, SECRET[:6], SECRET[-6:], "5ecret")


def _walk(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        item = stack.pop()
        if id(item) not in seen:
            seen.add(id(item))
            yield item
            stack.extend(e for e in (item.__cause__, item.__context__) if e is not None)


def _assert_clean(exc: BaseException) -> None:
    for item in _walk(exc):
        texts = [str(item), repr(item), repr(item.args), repr(vars(item))]
        for text in texts:
            for piece in PIECES:
                assert piece not in text, (
                    f"{piece!r} leaked in {type(item).__name__}: {text[:200]!r}"
                )


def _hostile(body: bytes) -> bytes:
    """The case's body with the Authorization header echoed into the message or the page.

    (The echo inside an error code, where it could move the answer to another row, is
    test_hostile_echo_redaction's.)
    """
    code = _code(body)
    if code is None:
        return body + f" echo {HEADER}".encode()
    return json.dumps({"error_code": code, "error_message": f"bad {HEADER}"}).encode()


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_called=False)


@pytest.fixture
async def client(router):
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as http,
        RecuroClient(
            KEY, SECRET, base_url=BASE, http_client=http, clock=FakeClock(), max_retries=0
        ) as recuro,
    ):
        yield recuro


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [(c[0], c[1], c[3]) for c in STATUS_CASES],
    ids=[f"{c[0]}-{_code(c[1]) or c[1][:20]!r}" for c in STATUS_CASES],
)
async def test_every_status_row_masks_an_echoed_header(router, client, status, body, cls):
    """Whatever row a hostile answer falls in, its exception (and cause chain) holds no secret."""
    router.post(BASE).mock(return_value=httpx.Response(status, content=_hostile(body)))
    with pytest.raises(RecuroError) as info:
        await client.get_progress("a.mov")
    assert type(info.value) is cls  # the echo does not move the answer to another row
    _assert_clean(info.value)


@pytest.mark.parametrize(
    ("status", "cls"), [(403, DownloadLinkExpiredError), (404, RecuroHTTPError)]
)
async def test_download_status_rows_mask_an_echoed_header(router, client, tmp_path, status, cls):
    """A download from the API's origin (sent with the header) whose error page echoes it: masked."""
    url = "https://api.test/download.php?guid=g"
    router.get(url).mock(return_value=httpx.Response(status, content=f"denied {HEADER}".encode()))
    with pytest.raises(RecuroError) as info:
        await client.download(url, tmp_path / "a.mp4")
    assert type(info.value) is cls
    assert router.calls.last.request.headers["authorization"] == HEADER  # the echo is the real one
    _assert_clean(info.value)
