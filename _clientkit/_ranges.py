"""HTTP range and validator headers, parsed (pure; RFC 9110 sections 8.8, 13.1.5 and 14)."""

from __future__ import annotations

import email.utils

import httpx

__all__ = [
    "content_length",
    "parse_content_range",
    "strong_validator",
    "unsatisfied_total",
    "validator_conflict",
]


def strong_validator(headers: httpx.Headers) -> str | None:
    """A validator fit for If-Range: a strong ETag, else a Last-Modified at least 1 s before Date."""
    etag: str | None = headers.get("etag")
    if etag is not None:
        etag = etag.strip()
        if etag.startswith('"') and etag.endswith('"') and len(etag) >= 2:
            return etag
    modified: str | None = headers.get("last-modified")
    if modified is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(modified)
        date_header = headers.get("date")
        if date_header is not None:
            served = email.utils.parsedate_to_datetime(date_header)
            if (served - when).total_seconds() < 1:
                return None  # weak by RFC 9110 8.8.2.2: it may change within the same second
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
    """`bytes first-last/total` as (first, last, total or None for `*`); None if malformed."""
    if value is None:
        return None
    unit, _, rest = value.strip().partition(" ")
    span, _, total_text = rest.strip().partition("/")
    first_text, _, last_text = span.partition("-")
    try:
        first, last = int(first_text), int(last_text)
        total = None if total_text.strip() == "*" else int(total_text)
    except ValueError:
        return None
    if (
        unit.lower() != "bytes"
        or first < 0
        or last < first
        or (total is not None and last >= total)
    ):
        return None
    return first, last, total


def unsatisfied_total(value: str | None) -> int | None:
    """The complete length in a 416's `bytes */total`, or None."""
    if value is None:
        return None
    unit, _, rest = value.strip().partition(" ")
    star, _, total = rest.strip().partition("/")
    if unit.lower() != "bytes" or star.strip() != "*" or not total.strip().isdigit():
        return None
    return int(total)


def content_length(headers: httpx.Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or "transfer-encoding" in headers:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None
