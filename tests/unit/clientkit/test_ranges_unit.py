"""`_clientkit._ranges` on its own: Content-Length, Content-Range, a 416's length and the If-Range validator.

Written from RFC 9110 and the module's docstrings (issue 17), not from the code: every case below is one a
downloader must get right to never splice or pad a file.
"""

from __future__ import annotations

import email.utils

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _clientkit._ranges import (
    content_length,
    parse_content_range,
    strong_validator,
    unsatisfied_total,
    validator_conflict,
)

DATE = "Tue, 01 Jan 2019 00:00:10 GMT"
NOT_ASCII_DIGITS = ["\u00b3", "\u0663", "\uff11", "\u4e94"]  # ³, Arabic-Indic 3, fullwidth 1, 五


def headers(**values: str) -> httpx.Headers:
    """Headers as they come off the wire (bytes; httpx decodes them, UTF-8 or Latin-1)."""
    return httpx.Headers([(k.replace("_", "-").encode(), v.encode()) for k, v in values.items()])


# ------------------------------------------------------------------------------------ Content-Length


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("10", 10), (" 42 ", 42), ("007", 7)])
def test_content_length_of_a_plain_response(value, expected):
    assert content_length(headers(content_length=value)) == expected


@pytest.mark.parametrize("encoding", ["chunked", "gzip, chunked", "identity", "CHUNKED"])
def test_content_length_is_ignored_when_the_body_is_framed_by_transfer_encoding(encoding):
    """RFC 9112 6.3: Transfer-Encoding overrides Content-Length (reading that many raw bytes would
    write chunk framing into the file)."""
    assert content_length(headers(content_length="10", transfer_encoding=encoding)) is None


@pytest.mark.parametrize(
    "value",
    ["", " ", "-1", "+5", "1e3", "5 5", "10, 10", "0x10", "1_000", "ten", *NOT_ASCII_DIGITS],
)
def test_content_length_that_is_not_ascii_digits_is_unknown(value):
    assert content_length(headers(content_length=value)) is None


def test_content_length_absent_is_unknown():
    assert content_length(headers()) is None


@given(st.integers(min_value=0, max_value=2**64))
def test_content_length_round_trips_every_length(length):
    assert content_length(headers(content_length=str(length))) == length


@given(st.text(max_size=12))
def test_content_length_never_raises_and_only_takes_ascii_digits(value):
    h = headers(content_length=value)
    got = content_length(h)
    stripped = h["content-length"].strip()
    if stripped.isascii() and stripped.isdigit():
        assert got == int(stripped)
    else:
        assert got is None


# ------------------------------------------------------------------------------------ Content-Range


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes 0-9/10", (0, 9, 10)),
        ("bytes 0-0/1", (0, 0, 1)),  # a one-byte range
        ("bytes 5-5/10", (5, 5, 10)),  # a one-byte range at the end of a resume
        ("bytes 9-9/10", (9, 9, 10)),
        ("bytes 100-199/*", (100, 199, None)),
        ("BYTES 0-9/10", (0, 9, 10)),  # range units are case-insensitive
        ("Bytes 0-9/10", (0, 9, 10)),
        ("  bytes 0-9/10 ", (0, 9, 10)),
        ("bytes 0-9/18446744073709551616", (0, 9, 2**64)),
    ],
)
def test_content_range_accepted(value, expected):
    assert parse_content_range(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "bytes",
        "bytes 0-9",
        "bytes 0-9/",
        "bytes -9/10",
        "bytes 0-/10",
        "bytes */10",  # the form of a 416, not of a 206
        "items 0-9/10",  # another unit
        "bytesx 0-9/10",
        "0-9/10",
        "bytes 0-10/10",  # the last byte is past the end (last == total)
        "bytes 0-11/10",
        "bytes 5-4/10",  # last before first
        "bytes 0-0/0",
        "bytes -1-5/10",
        "bytes +1-5/10",
        "bytes 0-9/-10",
        "bytes 0-9/+10",
        "bytes 0-9/1e2",
        "bytes 0 - 9 / 10",
        "bytes 0-9/10, bytes 10-19/20",
        "bytes 0-9/10/10",
        "bytes \u0660-\u0669/\u0661\u0660",  # Arabic-Indic digits, which int() would take
        "bytes 0-³/10",
    ],
)
def test_content_range_refused(value):
    assert parse_content_range(value) is None


@given(
    first=st.integers(0, 2**40),
    length=st.integers(1, 2**40),
    extra=st.integers(0, 2**40),
    star=st.booleans(),
)
def test_content_range_round_trips_every_valid_range(first, length, extra, star):
    last = first + length - 1
    total = last + 1 + extra
    text = f"bytes {first}-{last}/{'*' if star else total}"
    assert parse_content_range(text) == (first, last, None if star else total)


@given(first=st.integers(0, 1000), last=st.integers(0, 1000), total=st.integers(0, 1000))
def test_content_range_accepts_exactly_the_ranges_inside_the_file(first, last, total):
    got = parse_content_range(f"bytes {first}-{last}/{total}")
    assert (got is not None) == (first <= last < total)


@given(st.text(max_size=40))
def test_content_range_never_raises(value):
    got = parse_content_range(value)
    if got is not None:
        first, last, total = got
        assert 0 <= first <= last
        assert total is None or last < total


# ------------------------------------------------------------------------------------ 416 length


@pytest.mark.parametrize(
    ("value", "expected"),
    [("bytes */10", 10), ("bytes */0", 0), ("BYTES */7", 7), (" bytes */10 ", 10)],
)
def test_unsatisfied_total(value, expected):
    assert unsatisfied_total(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "bytes 0-9/10",  # the total of a 416 is read only after its `*`
        "bytes 10/10",
        "bytes */*",
        "bytes */",
        "bytes *-/10",
        "items */10",
        "bytes */-1",
        "bytes */+1",
        "bytes */³",
        "bytes */\u0661\u0660",
        "bytes * /10",
        "*/10",
    ],
)
def test_unsatisfied_total_refused(value):
    assert unsatisfied_total(value) is None


@given(st.integers(0, 2**64))
def test_unsatisfied_total_round_trips(total):
    assert unsatisfied_total(f"bytes */{total}") == total


# ------------------------------------------------------------------------------------ validators


def _at(seconds: float) -> str:
    return email.utils.formatdate(1_546_300_800 + seconds, usegmt=True)


def test_a_strong_etag_is_the_validator():
    assert strong_validator(headers(etag='"v1"')) == '"v1"'
    assert strong_validator(headers(etag=' "v1" ')) == '"v1"'
    assert strong_validator(headers(etag='""')) == '""'
    # preferred to a date
    assert strong_validator(headers(etag='"v1"', last_modified=_at(0), date=_at(100))) == '"v1"'


@pytest.mark.parametrize("etag", ['W/"v1"', "v1", '"v1', 'v1"', '"', '"a"b"', '"a b"', 'w/"v1"'])
def test_a_weak_or_malformed_etag_is_never_sent(etag):
    assert strong_validator(headers(etag=etag)) is None


@pytest.mark.parametrize("etag", ['W/"v1"', '"broken'])
def test_beside_a_weak_or_malformed_etag_an_old_date_is_used(etag):
    modified = _at(0)
    assert strong_validator(headers(etag=etag, last_modified=modified, date=_at(5))) == modified


@pytest.mark.parametrize(
    ("modified", "served", "strong"),
    [
        (0, 1, True),  # exactly one second before the response: strong
        (0, 100, True),
        (0, 0, False),  # the same second: the file may change again within it
        (5, 3, False),  # modified "after" it was served: clocks disagree, not trusted
    ],
)
def test_last_modified_is_strong_only_a_second_before_date(modified, served, strong):
    got = strong_validator(headers(last_modified=_at(modified), date=_at(served)))
    assert got == (_at(modified) if strong else None)


def test_last_modified_without_date_is_weak():
    assert strong_validator(headers(last_modified=_at(0))) is None


def test_no_validator_at_all():
    assert strong_validator(headers(date=_at(0))) is None
    assert strong_validator(headers()) is None


@pytest.mark.parametrize(
    ("modified", "served"),
    [
        ("yesterday", _at(100)),
        (_at(0), "later"),
        ("", _at(100)),
        ("Tue, 01 Jan 2019 00:00:00 -0000", _at(100)),  # a zone-less date next to a GMT one
    ],
)
def test_unreadable_dates_give_no_validator(modified, served):
    assert strong_validator(headers(last_modified=modified, date=served)) is None


def test_the_date_is_returned_as_sent_without_padding():
    modified = _at(0)
    assert strong_validator(headers(last_modified=f"  {modified} ", date=_at(9))) == modified


@given(
    etag=st.one_of(st.none(), st.text(alphabet='W/"ab1 ', max_size=8)),
    modified=st.integers(0, 10),
    served=st.one_of(st.none(), st.integers(0, 10)),
)
def test_validator_property(etag, modified, served):
    """Whatever the headers: the result is a well-formed strong ETag, a date a second older than Date,
    or None; and a strong ETag, when there is one, always wins."""
    values = {"last_modified": _at(modified)}
    if etag is not None:
        values["etag"] = etag
    if served is not None:
        values["date"] = _at(served)
    got = strong_validator(headers(**values))
    stripped = etag.strip() if etag is not None else ""
    strong_etag = (
        len(stripped) >= 2
        and stripped[0] == stripped[-1] == '"'
        and '"' not in stripped[1:-1]
        and " " not in stripped
    )
    if strong_etag:
        assert got == stripped
    elif served is not None and served - modified >= 1:
        assert got == _at(modified)
    else:
        assert got is None


# ------------------------------------------------------------------------------------ If-Range answers


@pytest.mark.parametrize(
    ("etag", "conflict"),
    [
        ('"v1"', None),
        (' "v1" ', None),
        (None, None),  # a missing header proves nothing
        ('"v2"', 'ETag "v2"'),
        ('W/"v1"', 'ETag W/"v1"'),
        (' "v2" ', 'ETag "v2"'),
    ],
)
def test_a_206_for_an_etag_must_carry_that_etag(etag, conflict):
    h = headers(etag=etag) if etag is not None else headers()
    assert validator_conflict('"v1"', h) == conflict


def test_an_etag_sent_is_not_compared_with_dates():
    assert validator_conflict('"v1"', headers(last_modified=_at(5))) is None


@pytest.mark.parametrize(
    ("modified", "conflict"),
    [
        (None, None),
        (_at(0), None),
        (f"  {_at(0)} ", None),
        ("Tue, 01 Jan 2019 00:00:00 +0000", None),  # the same instant written another way
        (_at(1), f"Last-Modified {_at(1)}"),
        ("not a date", "Last-Modified not a date"),
        (f" {_at(7)}", f"Last-Modified {_at(7)}"),
    ],
)
def test_a_206_for_a_date_must_carry_that_date(modified, conflict):
    h = headers(last_modified=modified) if modified is not None else headers()
    assert validator_conflict(_at(0), h) == conflict


def test_a_date_sent_is_not_compared_with_etags():
    assert validator_conflict(_at(0), headers(etag='"other"')) is None


def test_an_unreadable_date_sent_conflicts_with_any_other_date():
    assert validator_conflict("garbage", headers(last_modified=_at(0))) == f"Last-Modified {_at(0)}"
    assert validator_conflict("garbage", headers(last_modified="garbage")) is None
