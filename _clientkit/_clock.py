"""Time as an injectable dependency, so limiter, retry and poll tests run on a fake clock."""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Monotonic time and sleeping; the only two things our timing code needs."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for `seconds` (cancellable)."""
        ...


class SystemClock:
    """The real clock: `time.monotonic` and `anyio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"
