"""The upload byte budget: pace uploads under the server's per-address byte limit, and pause on 420.

The server (MEDIACRUSH.md 5, `ratelimit.py`) counts the bytes of every upload from one address in a
fixed window that opens with the first upload and lasts `period` seconds; it adds the size *before* its
check and refuses with 420 once the total reaches the limit, so a refused or duplicate upload counts too.
The server stamps the window when it handles the request, which is after the whole body has arrived, so
the client stamps its own window when the first upload of the window *finishes*: its window then never
ends before the server's does.
"""

from __future__ import annotations

import logging
import math

import anyio

from _clientkit._clock import Clock

from ._constants import LOGGER_NAME
from ._errors import InvalidArgumentError
from ._models import ByteBudget

__all__ = ["UploadBudget"]

_log = logging.getLogger(LOGGER_NAME)


class UploadBudget:
    """Reserve bytes before each upload; wait for the next window when the budget is spent.

    Reservations are served first come, first served (one FIFO lock), and waiting is cancellable.
    """

    def __init__(self, config: ByteBudget, clock: Clock) -> None:
        self._limit = config.max_bytes
        self._period = config.period
        self._clock = clock
        self._lock = anyio.Lock()
        self._used = 0
        self._window_open = False
        self._window_end: float | None = None  # None while the window's first upload is in flight
        self._settled = anyio.Event()
        self._paused_until = -math.inf

    def __repr__(self) -> str:
        return f"UploadBudget(max_bytes={self._limit}, period={self._period:g}, used={self._used})"

    @property
    def period(self) -> float:
        """The window length (and the pause after a 420 that cannot be placed in a known window)."""
        return self._period

    def paused_for(self) -> float | None:
        """Seconds left of the current 420 pause, or None when uploads are not paused."""
        left = self._paused_until - self._clock.monotonic()
        return left if left > 0 else None

    def check_size(self, size: int) -> None:
        """Refuse an upload that could never fit in one window."""
        if self._limit is not None and size >= self._limit:
            raise InvalidArgumentError(
                "file",
                f"{size} bytes cannot be uploaded: the server refuses any window of uploads "
                f"reaching {self._limit} bytes (ByteBudget.max_bytes)",
            )

    def _expire(self, now: float) -> None:
        if self._window_end is not None and now >= self._window_end:
            self._used = 0
            self._window_open = False
            self._window_end = None

    async def reserve(self, size: int) -> None:
        """Wait until `size` more bytes fit in the current window (and no 420 pause is on), then count them."""
        self.check_size(size)
        async with self._lock:
            while True:
                now = self._clock.monotonic()
                if now < self._paused_until:
                    _log.info(
                        "upload waiting for the rate-limit pause",
                        extra={"seconds": self._paused_until - now},
                    )
                    await self._clock.sleep(self._paused_until - now)
                    continue
                self._expire(now)
                if self._limit is None or self._used + size < self._limit:
                    break
                if self._window_end is None:
                    await self._settled.wait()  # the window's first upload has not finished yet
                    continue
                _log.info(
                    "upload waiting for the next byte-budget window",
                    extra={"seconds": self._window_end - now, "used": self._used},
                )
                await self._clock.sleep(self._window_end - now)
            if not self._window_open:
                self._window_open = True
                self._window_end = None
                self._settled = anyio.Event()
            self._used += size

    def settle(self) -> None:
        """Mark an upload as finished: the first one of a window fixes the window's end."""
        if self._window_open and self._window_end is None:
            self._window_end = self._clock.monotonic() + self._period
            self._settled.set()

    def refused(self) -> float:
        """The server said 420: pause all uploads until its window surely ended; return the pause."""
        self.settle()
        now = self._clock.monotonic()
        if self._window_end is not None and self._window_end > now and self._limit is not None:
            until = self._window_end
        else:
            until = now + self._period  # the server's window is not ours to know: wait a whole one
        self._paused_until = max(self._paused_until, until)
        # Whatever the server counted, the next window starts fresh after the pause.
        self._used = 0
        self._window_open = False
        self._window_end = None
        self._settled.set()
        _log.warning("uploads paused by the server's rate limit", extra={"seconds": until - now})
        return until - now
