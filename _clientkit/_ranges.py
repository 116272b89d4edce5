"""HTTP range and validator headers, parsed strictly (pure; RFC 9110 sections 8.6, 8.8, 13.1.5, 14.4).

Numbers are ASCII digits only (`str.isdigit` and `int` also take `³` or `٣`, which no server means), and
a value that does not follow the grammar is None: the caller then treats the response as unusable for a
resume rather than guessing.
"""

from __future__ import annotations

import email.utils
import re
from typing import Final

import httpx

__all__ = [
    "PartialMismatch",
    "check_partial",
    "content_length",
    "parse_content_range",
    "strong_validator",
    "unsatisfied_total",
    "validator_conflict",
]

_STRONG_ETAG: Final = re.compile(r'"[\x21\x23-\x7e\x80-\xff]*"')
# `bytes first-last/complete` or `bytes first-last/*`; the unit is case-insensitive (RFC 9110 14.1)
_CONTENT_RANGE: Final = re.compile(r"(?i:bytes) ([0-9]+)-([0-9]+)/([0-9]+|\*)")
_UNSATISFIED: Final = re.compile(r"(?i:bytes) \*/([0-9]+)")
_DIGITS: Final = re.compile(r"[0-9]+")


def strong_validator(headers: httpx.Headers) -> str | None:
    """A validator fit for If-Range (RFC 9110 13.1.5), or None.

    A strong ETag; else a Last-Modified at least one second before the response's Date. Without a
    Date, or within the same second, the date is weak (8.8.2.2): the file may have changed twice within
    that second. A weak or malformed ETag is never sent; the date is still used beside a weak ETag
    (13.1.5 says a client with an entity tag should not send a date, but the date is the only
    protection against a splice that such a server offers, and it evaluates an If-Range date exactly).
    """
    etag: str | None = headers.get("etag")
    if etag is not None and _STRONG_ETAG.fullmatch(etag.strip()):
        return etag.strip()
    modified: str | None = headers.get("last-modified")
    date_header: str | None = headers.get("date")
    if modified is None or date_header is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(modified)
        served = email.utils.parsedate_to_datetime(date_header)
        if (served - when).total_seconds() < 1:
            return None
    except (TypeError, ValueError, IndexError):
        return None
    return modified.strip()


def validator_conflict(sent: str, headers: httpx.Headers) -> str | None:
    """The response validator that contradicts the If-Range value `sent`, or None if none does.

    `sent` is an ETag (quoted) or an HTTP date. A 206 answering `If-Range: <sent>` must be for that
    representation, so a different ETag (or, for a date, a different Last-Modified) means a server or
    cache splicing two versions. A missing header proves nothing and is not a conflict.
    """
    if sent.startswith('"'):
        etag: str | None = headers.get("etag")
        if etag is not None and etag.strip() != sent:
            return f"ETag {etag.strip()}"
        return None
    modified: str | None = headers.get("last-modified")
    if modified is None or modified.strip() == sent:
        return None
    try:
        parse = email.utils.parsedate_to_datetime
        same = parse(modified) == parse(sent)
    except (TypeError, ValueError, IndexError):
        same = False
    return None if same else f"Last-Modified {modified.strip()}"


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """`bytes first-last/total` as (first, last, total or None for `*`); None if malformed.

    Malformed also means `last < first` or `last >= total`: such a range describes no bytes of the file.
    """
    if value is None:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        return None
    first, last = int(match[1]), int(match[2])
    total = None if match[3] == "*" else int(match[3])
    if last < first or (total is not None and last >= total):
        return None
    return first, last, total


def unsatisfied_total(value: str | None) -> int | None:
    """The complete length in a 416's `bytes */total`, or None (a 416 may also carry no length)."""
    if value is None:
        return None
    match = _UNSATISFIED.fullmatch(value.strip())
    return int(match[1]) if match is not None else None


def content_length(headers: httpx.Headers) -> int | None:
    """The body's length from Content-Length, or None when unknown.

    None when any Transfer-Encoding is present: the length then comes from the chunked framing and a
    Content-Length must be ignored (RFC 9112 6.3); reading that many raw bytes would write chunk framing
    into the file.
    """
    value = headers.get("content-length")
    if value is None or "transfer-encoding" in headers:
        return None
    value = value.strip()
    return int(value) if _DIGITS.fullmatch(value) else None


class PartialMismatch(ValueError):
    """A 206 whose bytes cannot be written where they were asked for; the message says why."""


def check_partial(
    headers: httpx.Headers,
    start: int,
    end: int | None = None,
    *,
    sent: str | None = None,
    known: int | None = None,
) -> tuple[int, int, int | None]:
    """Check a 206 to `Range: bytes=start-[end]`; (first, last, total, else `known`) or `PartialMismatch`.

    `sent`: the If-Range validator the request carried (None: none, so any version is acceptable);
    `known`: the complete length already known (None: any total is acceptable). Refused: a
    Content-Encoding (its offsets are not file offsets), a missing or multi-part Content-Range, another
    version than `sent`, a start other than `start`, another total than `known`, an end past `end`,
    and a Content-Length other than the range's length.
    """
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in {"", "identity"}:
        raise PartialMismatch(
            f"refusing a 206 with Content-Encoding {encoding!r}: its offsets are not file offsets"
        )
    parsed = parse_content_range(headers.get("content-range"))
    if parsed is None:
        raise PartialMismatch("a 206 without a valid single-range Content-Range")
    first, last, total = parsed
    conflict = None if sent is None else validator_conflict(sent, headers)
    if conflict is not None:
        raise PartialMismatch(
            f"a 206 for another version of the file ({conflict}, If-Range was {sent}); "
            "refusing to splice it onto the bytes on disk; the .part is kept, "
            "download again with resume=False to start over"
        )
    if first != start:
        raise PartialMismatch(
            f"Content-Range starts at byte {first}, but byte {start} was asked for"
        )
    if total is not None and known is not None and total != known:
        raise PartialMismatch(f"Content-Range total {total} disagrees with the known size {known}")
    if end is not None and last > end:
        raise PartialMismatch(f"Content-Range ends at byte {last}, past the requested {end}")
    length = content_length(headers)
    if length is not None and length != last - first + 1:
        raise PartialMismatch(
            f"Content-Length {length} disagrees with Content-Range {first}-{last}"
        )
    return first, last, total if total is not None else known
