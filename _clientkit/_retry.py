"""Retry policy: capped exponential backoff with full jitter, and Retry-After parsing.

Which calls may be retried is the caller's decision (`safe`), made explicit in `_transport.send`.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime

import attrs

from ._validators import finite_number, integer

__all__ = ["RetryPolicy", "parse_retry_after"]


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
