"""Retry policy: capped exponential backoff with full jitter, Retry-After parsing, attempt accounting.

Which calls may be retried is the caller's decision (`safe`), made explicit in `_transport.send`. A
download counts its attempts with `Attempts`: failures in a row without progress.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime

import attrs

from ._validators import finite_number, integer

__all__ = ["Attempts", "RetryPolicy", "Retryable", "parse_retry_after"]


@attrs.frozen
class RetryPolicy:
    """How often and how long to wait between attempts.

    Attributes:
        max_retries: attempts after the first (0 disables retries).
        base: the first backoff ceiling in seconds; it doubles per attempt.
        cap: the largest backoff ceiling.
        max_retry_after: the longest server-requested wait honoured (a longer one is capped).
    """

    max_retries: int = attrs.field(default=4, validator=integer(ge=0))
    base: float = attrs.field(default=0.5, validator=finite_number(ge=0))
    cap: float = attrs.field(default=30.0, validator=finite_number(ge=0))
    max_retry_after: float = attrs.field(default=120.0, validator=finite_number(ge=0))

    def delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Full-jitter backoff before retry number `attempt` (0-based): uniform in [0, min(cap, base*2**n)]."""
        ceiling = min(self.cap, self.base * (2.0 ** min(attempt, 62)))
        return (rng or random).uniform(0.0, ceiling)

    def honour(self, retry_after: float | None) -> float | None:
        """A server's Retry-After, capped by `max_retry_after`."""
        if retry_after is None:
            return None
        return min(max(retry_after, 0.0), self.max_retry_after)


def parse_retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date; None if absent/bad."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Retryable(Exception):
    """One failed attempt that may be retried; the caller turns it into a public failure when none is left."""

    def __init__(
        self,
        message: str,
        *,
        request_sent: bool,
        status: int | None = None,
        excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_sent = request_sent
        self.status = status
        self.excerpt = excerpt
        self.retry_after = retry_after


@attrs.define
class Attempts:
    """Consecutive failures without progress.

    Progress is measured as a position (bytes on disk of the current representation, or of a segment)
    against `mark`, the furthest position any earlier attempt reached: bytes that only re-download what
    an earlier attempt had (a server ignoring Range) are not progress.
    """

    limit: int
    failures: int = 0
    mark: int = 0

    def advanced(self, position: int) -> bool:
        """True (and the count of failures cleared) if `position` is past every earlier one."""
        if position <= self.mark:
            return False
        self.failures = 0
        self.mark = position
        return True

    def failed(self, position: int) -> bool:
        """Record a failure at `position`; True if another attempt is allowed."""
        self.advanced(position)
        self.failures += 1
        return self.failures <= self.limit

    def new_representation(self) -> None:
        """The remote file changed: positions in the old one say nothing about the new one."""
        self.failures = 0
        self.mark = 0
