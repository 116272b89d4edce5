"""The shared error-table machinery: rows matched by status and code, the most specific class of an
exception picking its row, and the httpx-exception table of `map_httpx_errors` walked row by row."""

from __future__ import annotations

import re

import httpx
import pytest

from _clientkit import _transport
from _clientkit._errormap import ANY_CODE, Call, StatusRow, most_specific, status_row, translating
from _clientkit._failures import (
    ClientkitFailure,
    DownloadFailure,
    HTTPStatusFailure,
    TransportFailure,
)
from _clientkit._transport import map_httpx_errors

ROWS = (
    StatusRow("limited", status=400, code=re.compile("ratelimit", re.IGNORECASE)),
    StatusRow("server", status=range(500, 600)),
    StatusRow("api", code=ANY_CODE),
)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "DailyRateLimit", "limited"),
        (400, "Other", "api"),
        (400, None, None),
        (503, None, "server"),
        (503, "Busy", "server"),
        (600, None, None),
        (418, "", "api"),
    ],
)
def test_the_first_matching_row_wins(status, code, expected):
    """A row matches on its status (one or a range) and code pattern; a pattern needs a code; first wins."""
    row = status_row(ROWS, status, code)
    assert (row.result if row else None) == expected


def test_the_most_specific_class_picks_the_row_whatever_the_order():
    """An HTTPStatusFailure takes its own row, not its parent DownloadFailure's, in either order."""
    rows = {DownloadFailure: "download", HTTPStatusFailure: "status", ClientkitFailure: "any"}
    reversed_rows = dict(reversed(rows.items()))
    for table in (rows, reversed_rows):
        assert most_specific(table, HTTPStatusFailure(404)) == "status"
        assert most_specific(table, DownloadFailure("x")) == "download"
        assert most_specific(table, TransportFailure("x", request_sent=True)) == "any"
    assert most_specific({DownloadFailure: 1}, ValueError()) is None


def test_translating_leaves_other_exceptions_and_unmapped_failures_alone():
    """Only a shared failure with a row is translated; anything else passes through unchanged."""
    table = {DownloadFailure: lambda f, call: RuntimeError(f"{call.name}: {f}")}
    call = Call("download", "download")
    with pytest.raises(RuntimeError, match="download: broken") as info, translating(table, call):
        raise DownloadFailure("broken")
    assert isinstance(info.value.__cause__, DownloadFailure)
    unmapped = TransportFailure("x", request_sent=False)
    with pytest.raises(TransportFailure) as passed, translating(table, call):
        raise unmapped
    assert passed.value is unmapped
    with pytest.raises(KeyError), translating(table, call):
        raise KeyError("not a failure")


# httpx exception -> (request_sent, the reason in the message); every row of the table is reached
HTTPX_CASES = [
    (httpx.ConnectError("refused"), False, "could not send the request"),
    (httpx.ConnectTimeout("slow"), False, "could not send the request"),
    (httpx.PoolTimeout("busy"), False, "could not send the request"),
    (httpx.UnsupportedProtocol("ftp"), False, "could not send the request"),
    (httpx.ReadTimeout("slow"), True, "the connection failed"),
    (httpx.RemoteProtocolError("cut"), True, "the connection failed"),
    (httpx.DecodingError("bad gzip"), True, "the response could not be read"),
    (httpx.TooManyRedirects("loop"), True, "the response could not be read"),
]


@pytest.mark.parametrize(
    ("exc", "sent", "reason"), HTTPX_CASES, ids=[type(c[0]).__name__ for c in HTTPX_CASES]
)
def test_each_httpx_exception_maps_to_its_row(exc, sent, reason):
    """The httpx table decides request_sent and the message; the type name is kept, not the text."""
    with pytest.raises(TransportFailure) as info, map_httpx_errors():
        raise exc
    assert info.value.request_sent is sent
    assert str(info.value) == f"{type(exc).__name__}: {reason}"
    assert info.value.__cause__ is exc


def test_every_httpx_row_is_walked_by_a_case():
    """Adding a row to the httpx table without a case here fails."""
    rows = _transport._HTTPX_FAILURES
    reached = {next(c for c in type(exc).__mro__ if c in rows) for exc, *_ in HTTPX_CASES}
    assert reached == set(rows)
