"""The rate budget across restarts: the limiter's live window kept in the journal, so a rerun starts with it.

The account's window is the server's, not the process's: a run killed a second ago still has its last
requests in it. `JournaledWindow` wraps the client's limiter and writes a snapshot of the live window to the
journal before admitting each block of `reserve` requests, so that at any moment the journal covers every
request the process may have sent:

- released slots are saved with their exact (wall-clock) stamps;
- slots in flight at the snapshot, requests still waiting for room in the window (an earlier block counted
  them, but they are admitted after this snapshot), and the `reserve` admissions the snapshot allows
  before the next one, are saved as a count of *phantoms*: their stamps are unknown (at the latest, the moment of the kill), so a
  rerun stamps them at its own start, which is never earlier than the truth.

A rerun seeds its limiter with the stamps and the phantoms, so a kill and a rerun never put more than the
limit in any window, and the cost is at most `reserve` slots of one window per restart. A clean end saves
the exact window (no reserve).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

import anyio

from _clientkit._limiter import Limiter, Ticket

__all__ = ["JournaledWindow", "WindowLimiter"]

log = logging.getLogger("orchestrator")

_MAX_RESERVE: Final = 20
Saver = Callable[[dict[str, Any]], Awaitable[None]]


class WindowLimiter(Limiter, Protocol):
    """A limiter whose live window can be read and loaded (`_clientkit`'s `PersistentWindow`)."""

    @property
    def max_requests(self) -> int: ...

    def stamps(self) -> list[float]: ...

    def seed(self, stamps: list[float]) -> None: ...


class JournaledWindow:
    """A `Limiter` that keeps its window in the journal (see the module docstring).

    `wall_clock` must be the inner limiter's (the stamps are on it); `reserve` defaults to a tenth of the
    limit, at most 20.
    """

    def __init__(
        self,
        inner: WindowLimiter,
        *,
        reserve: int | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._inner = inner
        self._wall_clock = wall_clock
        self._reserve = reserve or max(1, min(_MAX_RESERVE, inner.max_requests // 10))
        self._granted = self._reserve  # the first admission saves a snapshot first
        self._in_flight = 0
        self._waiting = 0  # counted by a snapshot's block, not admitted yet (a full window)
        self._saver: Saver | None = None
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"JournaledWindow({self._inner!r}, reserve={self._reserve})"

    @property
    def inner(self) -> WindowLimiter:
        """The limiter that keeps the window."""
        return self._inner

    def restore(self, saved: dict[str, Any] | None) -> None:
        """Load a snapshot an earlier run saved (its phantoms stamped now)."""
        if not saved:
            return
        now = self._wall_clock()
        stamps = [float(s) for s in saved.get("stamps", ())]
        phantoms = int(saved.get("phantoms", 0))
        self._inner.seed(stamps + [now] * phantoms)
        log.info("rate window restored: %d stamps, %d phantoms", len(stamps), phantoms)

    def bind(self, saver: Saver | None) -> None:
        """Save snapshots through `saver` (the journal), or stop saving (None)."""
        self._saver = saver
        self._granted = self._reserve

    def snapshot(self, *, reserve: int) -> dict[str, Any]:
        """The live window: exact stamps of released slots, phantoms for the rest and the reserve."""
        stamps = sorted(self._inner.stamps())
        # in-flight slots are reported as stamped now, the newest: they become phantoms instead; so do
        # requests an earlier block counted that still wait for room (they are admitted after this one)
        exact = stamps[: max(len(stamps) - self._in_flight, 0)]
        return {"stamps": exact, "phantoms": self._in_flight + self._waiting + reserve}

    async def save_final(self) -> None:
        """Save the exact window at a clean end (nothing more will be admitted)."""
        if self._saver is not None:
            await self._saver(self.snapshot(reserve=0))

    async def acquire(self) -> Ticket:
        """Take a slot; every `reserve` admissions are covered by a snapshot saved before the first."""
        async with self._lock:
            if self._saver is not None and self._granted >= self._reserve:
                await self._saver(self.snapshot(reserve=self._reserve))
                self._granted = 0
            self._granted += 1
            self._waiting += 1
        try:
            ticket = await self._inner.acquire()
        finally:
            self._waiting -= 1
        self._in_flight += 1
        return ticket

    async def release(self, ticket: Ticket, *, abandoned: bool = False) -> None:
        """Stamp the slot (see `Limiter.release`)."""
        self._in_flight -= 1
        await self._inner.release(ticket, abandoned=abandoned)

    async def pause(self, seconds: float) -> None:
        """Pause the window (see `Limiter.pause`)."""
        await self._inner.pause(seconds)
