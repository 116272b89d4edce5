"""`_clientkit._ranges.check_partial` on its own: which 206 responses may be written where they were asked for.

Written from RFC 9110 (14.4 Content-Range, 13.1.5 If-Range, 8.6 Content-Length) and the function's docstring:
each refusal is a splice or a padded file the downloader must never write.
"""

from __future__ import annotations

import httpx
import pytest

from _clientkit._ranges import PartialMismatch, check_partial

ETAG = '"v1"'
DATE = "Tue, 01 Jan 2019 00:00:00 GMT"


def headers(**values: str) -> httpx.Headers:
    """Headers as they come off the wire."""
    return httpx.Headers([(k.replace("_", "-").encode(), v.encode()) for k, v in values.items()])


def partial(first: int, last: int, total: str = "100", **more: str) -> httpx.Headers:
    """A well-formed 206's headers for bytes first..last of `total`."""
    return headers(
        content_range=f"bytes {first}-{last}/{total}",
        content_length=str(last - first + 1),
        **more,
    )


def refusal(headers: httpx.Headers, start: int, end: int | None = None, **known: object) -> str:
    """The whole message of the PartialMismatch that `check_partial` must raise."""
    with pytest.raises(PartialMismatch) as caught:
        check_partial(headers, start, end, **known)  # type: ignore[arg-type]
    return str(caught.value)


def test_a_fresh_range_is_accepted_with_its_total():
    """bytes=0-9 answered with 0-9/100: first, last and the total come back."""
    assert check_partial(partial(0, 9), 0) == (0, 9, 100)


def test_a_resume_with_the_known_total_and_validator_is_accepted():
    """The range starts where asked, the total is the known one and the ETag is the one sent."""
    got = check_partial(partial(40, 99, etag=ETAG), 40, sent=ETAG, known=100)
    assert got == (40, 99, 100)


def test_an_unknown_total_falls_back_to_the_known_one():
    """`bytes 40-99/*` says nothing about the total: the known one is returned."""
    assert check_partial(partial(40, 99, "*"), 40, known=100) == (40, 99, 100)
    assert check_partial(partial(40, 99, "*"), 40) == (40, 99, None)


def test_a_range_ending_exactly_at_the_requested_end_is_accepted():
    """The last byte may equal `end` (inclusive) or fall short of it, never pass it."""
    assert check_partial(partial(10, 19), 10, 19) == (10, 19, 100)
    assert check_partial(partial(10, 14), 10, 19) == (10, 14, 100)


def test_a_range_past_the_requested_end_is_refused():
    """A 206 carrying bytes beyond the asked-for end would overwrite the next segment."""
    assert (
        refusal(partial(10, 20), 10, 19) == "Content-Range ends at byte 20, past the requested 19"
    )


@pytest.mark.parametrize("first", [0, 39, 41])
def test_a_range_starting_elsewhere_is_refused(first):
    """Only the byte asked for may come first: anything else would be written at the wrong offset."""
    expected = f"Content-Range starts at byte {first}, but byte 40 was asked for"
    assert refusal(partial(first, 99), 40) == expected


def test_another_total_than_the_known_one_is_refused():
    """A different complete length is another file."""
    expected = "Content-Range total 101 disagrees with the known size 100"
    assert refusal(partial(40, 99, "101"), 40, known=100) == expected


@pytest.mark.parametrize(
    "value", [None, "bytes 0-9", "bytes 9-0/100", "bytes 0-9,20-29/100", "items 0-9/100"]
)
def test_a_missing_or_malformed_content_range_is_refused(value):
    """No single valid `bytes first-last/total`: no way to know where the bytes belong."""
    values = {"content_length": "10"}
    if value is not None:
        values["content_range"] = value
    assert refusal(headers(**values), 0) == "a 206 without a valid single-range Content-Range"


@pytest.mark.parametrize("encoding", ["gzip", " GZIP ", "br"])
def test_a_content_encoding_is_refused(encoding):
    """Offsets of an encoded body are not file offsets (RFC 9110 14.1.1)."""
    expected = (
        f"refusing a 206 with Content-Encoding {encoding.strip().lower()!r}: "
        "its offsets are not file offsets"
    )
    assert refusal(partial(0, 9, content_encoding=encoding), 0) == expected


@pytest.mark.parametrize("encoding", ["identity", " Identity ", ""])
def test_identity_encoding_is_accepted(encoding):
    """`identity` (any case) and an empty value are no encoding."""
    assert check_partial(partial(0, 9, content_encoding=encoding), 0) == (0, 9, 100)


def test_a_content_length_other_than_the_range_is_refused():
    """Content-Length must equal last - first + 1, else the body is padded or cut."""
    bad = headers(content_range="bytes 0-9/100", content_length="11")
    assert refusal(bad, 0) == "Content-Length 11 disagrees with Content-Range 0-9"
    short = headers(content_range="bytes 0-9/100", content_length="9")
    assert refusal(short, 0) == "Content-Length 9 disagrees with Content-Range 0-9"


def test_no_content_length_is_not_a_refusal():
    """A chunked 206 has no Content-Length; the range alone says how long it is."""
    chunked = headers(content_range="bytes 0-9/100", transfer_encoding="chunked")
    assert check_partial(chunked, 0) == (0, 9, 100)


def test_another_etag_than_the_one_sent_is_refused():
    """A 206 for another version than If-Range named is a splice of two versions."""
    assert refusal(partial(40, 99, etag='"v2"'), 40, sent=ETAG) == (
        'a 206 for another version of the file (ETag "v2", If-Range was "v1"); '
        "refusing to splice it onto the bytes on disk; the .part is kept, "
        "download again with resume=False to start over"
    )


def test_another_last_modified_than_the_one_sent_is_refused():
    """With a date sent in If-Range, a 206 with another Last-Modified is another version."""
    later = "Tue, 01 Jan 2019 00:00:05 GMT"
    assert refusal(partial(40, 99, last_modified=later), 40, sent=DATE).startswith(
        f"a 206 for another version of the file (Last-Modified {later}, If-Range was {DATE}); "
    )
    assert check_partial(partial(40, 99, last_modified=DATE), 40, sent=DATE) == (40, 99, 100)


def test_without_a_sent_validator_any_version_is_accepted():
    """A fresh request (no If-Range) accepts whatever version the server has."""
    assert check_partial(partial(0, 9, etag='"v2"'), 0) == (0, 9, 100)


def test_the_refusal_is_a_value_error():
    """Callers that treat every bad header value alike may catch ValueError."""
    assert issubclass(PartialMismatch, ValueError)
