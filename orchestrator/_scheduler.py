"""Who goes next: one priority gate in front of the client's limiter, and a bound per lane.

The client's limiter is first-come first-served, so priorities are applied before it: the `PrioritySemaphore`
used as the *call gate* lets only a few API calls wait at the limiter or be in flight, and hands each free
place to the best waiting call. Calls that finish items (StartJob, DeleteMedia, reconciliation reads) go
before new uploads, and both before polls, so a batch drains instead of piling media up on the account.
Downloads are not API calls (they do not count against the rate limit); they have their own lane.

Lanes (`Lanes`), each bounded separately:
- `active`: items that may hold media on the account (`--max-active`): a new item is admitted before its
  upload, and leaves once its media is deleted; items resumed from the journal are admitted over the bound.
- `uploads`: UploadMedia calls with an open intent (default 1: after a crash at most one upload is
  unaccounted for, so reconciliation can always attribute the media it finds);
- `staging`: local files being staged (a presigning stager may do real work here);
- `downloads`: restored files being downloaded.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import IntEnum

import anyio
import anyio.lowlevel
import attrs

__all__ = ["Lanes", "Priority", "PrioritySemaphore"]


class Priority(IntEnum):
    """Lower goes first."""

    FINISH = 0  # StartJob, DeleteMedia, ListMedia sweeps, reconciliation: calls that move items toward done
    UPLOAD = 1  # UploadMedia: new work
    POLL = 2  # GetProgress, ListMedia: observation


@attrs.define(eq=False)
class _Waiter:
    event: anyio.Event = attrs.Factory(anyio.Event)
    granted: bool = False
    cancelled: bool = False


class PrioritySemaphore:
    """A semaphore whose free places go to the waiter with the best (lowest) priority, FIFO within one.

    Cancel-safe: a waiter cancelled after it was granted a place hands the place on. `force=True` takes a
    place at once even over the bound (used to re-admit items resumed from the journal).
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self._slots = slots
        self._used = 0
        self._heap: list[tuple[int, int, _Waiter]] = []
        self._counter = itertools.count()

    def __repr__(self) -> str:
        return f"<PrioritySemaphore used={self._used}/{self._slots} waiting={self.waiting}>"

    @property
    def slots(self) -> int:
        """The bound."""
        return self._slots

    @property
    def used(self) -> int:
        """Places taken now (may exceed `slots` after forced acquisitions)."""
        return self._used

    @property
    def waiting(self) -> int:
        """Waiters not yet granted a place."""
        return sum(1 for _, _, w in self._heap if not w.cancelled)

    def waiting_at_or_before(self, priority: int) -> int:
        """Waiters of `priority` or better (the backlog a new call of that priority would join)."""
        return sum(1 for p, _, w in self._heap if p <= priority and not w.cancelled)

    async def acquire(self, priority: int = 0, *, force: bool = False) -> None:
        """Take a place, waiting for one unless `force`."""
        self._drop_cancelled()
        if force or (self._used < self._slots and not self._heap):
            self._used += 1
            await anyio.lowlevel.checkpoint()
            return
        waiter = _Waiter()
        heapq.heappush(self._heap, (priority, next(self._counter), waiter))
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self.release()
            else:
                waiter.cancelled = True
            raise

    def release(self) -> None:
        """Give a place back; it goes to the best waiter, if any."""
        self._used -= 1
        self._grant()

    @asynccontextmanager
    async def hold(self, priority: int = 0, *, force: bool = False) -> AsyncIterator[None]:
        """`async with gate.hold(priority):` holds one place for the block."""
        await self.acquire(priority, force=force)
        try:
            yield
        finally:
            self.release()

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)

    def _grant(self) -> None:
        while self._used < self._slots and self._heap:
            _, _, waiter = heapq.heappop(self._heap)
            if waiter.cancelled:
                continue
            waiter.granted = True
            self._used += 1
            waiter.event.set()


@attrs.define
class Lanes:
    """The separate bounds of one batch (see the module docstring)."""

    calls: PrioritySemaphore
    active: PrioritySemaphore
    uploads: anyio.CapacityLimiter
    staging: anyio.CapacityLimiter
    downloads: anyio.CapacityLimiter

    @classmethod
    def create(
        cls,
        *,
        max_active: int = 32,
        max_calls: int = 8,
        max_uploads: int = 1,
        max_staging: int = 4,
        max_downloads: int = 4,
    ) -> Lanes:
        """Lanes with the given bounds."""
        return cls(
            calls=PrioritySemaphore(max_calls),
            active=PrioritySemaphore(max_active),
            uploads=anyio.CapacityLimiter(max_uploads),
            staging=anyio.CapacityLimiter(max_staging),
            downloads=anyio.CapacityLimiter(max_downloads),
        )
