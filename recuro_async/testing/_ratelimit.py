"""The API's rate limit: at most `limit` requests per sliding window per credentials, counted on arrival.

"The API is currently rate limited to a maximum of 200 requests/minute." (seed document, Authentication.)
The window is a log of admission times per API key: a request is admitted when fewer than `limit` admitted
requests arrived in the last `window` seconds. Refused requests are not counted (they cost nothing, so a
client that backs off after a refusal is not punished twice); downloads are not API requests and are not
counted.
"""

from __future__ import annotations

import collections
import math
from typing import Literal

from recuro_async.testing._catalog import ApiError

Refusal = Literal["400", "429"]


class SlidingWindowLimit:
    """Per-key sliding-window admission with one of two refusal forms."""

    def __init__(self, limit: int, window: float, refusal: Refusal = "400") -> None:
        self.limit = limit
        self.window = window
        self.refusal = refusal
        self._arrivals: dict[str, collections.deque[float]] = {}

    def retry_after(self, key: str, now: float) -> float | None:
        """Admit a request of `key` arriving at `now` (None) or return the seconds until a slot frees."""
        log = self._arrivals.setdefault(key, collections.deque())
        horizon = now - self.window
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) < self.limit:
            log.append(now)
            return None
        return max(0.0, log[0] - horizon)

    def admit(self, key: str, now: float) -> None:
        """Admit the request or raise the configured refusal as an ApiError."""
        wait = self.retry_after(key, now)
        if wait is None:
            return
        message = (
            f"Rate limit exceeded: at most {self.limit} requests per {self.window:g} s; "
            f"retry in {wait:.3f} s."
        )
        if self.refusal == "429":
            seconds = str(max(1, math.ceil(wait)))
            raise ApiError(
                "RateLimitExceeded", message, status=429, headers=(("retry-after", seconds),)
            )
        raise ApiError("RateLimitExceeded", message, status=400)

    def in_window(self, key: str, now: float) -> int:
        """Count the admitted requests of `key` in the window ending at `now`."""
        horizon = now - self.window
        return sum(1 for t in self._arrivals.get(key, ()) if t > horizon)
