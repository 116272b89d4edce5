"""Virtual time for tests, with no real sleeping.

- `FakeClock`: a `_clientkit._clock.Clock` for code that takes a clock (limiter, retry, polling). Works on
  any asyncio loop, so also inside ordinary pytest-asyncio tests.
- `VirtualTimeLoop`: an asyncio event loop whose own clock is virtual, for code that reads `loop.time()`
  itself (aiolimiter). Whenever nothing is runnable it jumps straight to the next timer. It, `run_virtual`
  and `LoopClock` live in `_clientkit._virtualtime` (the benchmarks use the same one) and are re-exported.

Typical use::

    clock = FakeClock()
    async with clock.autoadvance():          # time jumps to the next deadline whenever all tasks block
        await code_under_test(clock=clock)

    task_group.start_soon(waiter, clock)     # or step by hand
    await clock.advance(5.0)                 # wakes every sleeper due by now+5 in deadline order
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import weakref
from collections.abc import AsyncIterator, Sized
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel

from _clientkit._virtualtime import LoopClock, VirtualTimeLoop, run_virtual

__all__ = ["FakeClock", "LoopClock", "VirtualTimeLoop", "run_virtual"]


# asyncio runs at most this many loop iterations in `settle` before calling the loop busy (a livelock).
_MAX_SETTLE_ROUNDS = 10_000
# Without asyncio's run queue to inspect (another loop implementation), settle yields this many times.
_BLIND_SETTLE_ROUNDS = 64


# How many tasks are inside `FakeClock.settle()` on each event loop.
_settling: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = weakref.WeakKeyDictionary()


class _Sleeper:
    __slots__ = ("done", "event")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.done = False


class FakeClock:
    """A `Clock` whose time moves only when the test moves it; sleepers wake in deadline order.

    Ties wake in the order the sleeps began, and every task that can run does so (until it blocks again)
    before the next sleeper wakes, so a run is deterministic. Move time with `advance` / `advance_to`, or
    inside `autoadvance()`, which jumps to the next deadline whenever the event loop goes idle. Use one of
    the two styles at a time.

    Attributes:
        slept: Every duration passed to `sleep`, in call order (handy for asserting backoff delays).
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, _Sleeper]] = []
        self._order = itertools.count()
        self._sleeper_added: anyio.Event | None = None
        self.slept: list[float] = []

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now}, sleepers={self.sleepers})"

    def monotonic(self) -> float:
        """The virtual time, in seconds."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Block until virtual time reaches now + `seconds`; `seconds <= 0` is just a checkpoint."""
        if math.isnan(seconds):
            raise ValueError("seconds must be a number, got nan")
        self.slept.append(seconds)
        deadline = self._now + seconds
        if seconds > 0 and deadline <= self._now:  # too small to move a float this large
            deadline = math.nextafter(self._now, math.inf)
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        sleeper = _Sleeper()
        heapq.heappush(self._sleepers, (deadline, next(self._order), sleeper))
        if self._sleeper_added is not None:
            self._sleeper_added.set()
        try:
            await sleeper.event.wait()
        finally:
            sleeper.done = True  # a cancelled sleeper is dropped from the heap lazily

    @property
    def sleepers(self) -> int:
        """How many tasks are sleeping on this clock now."""
        return sum(not sleeper.done for _, _, sleeper in self._sleepers)

    def next_deadline(self) -> float | None:
        """The earliest deadline of a sleeping task, or None if nobody sleeps."""
        while self._sleepers and self._sleepers[0][2].done:
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    async def settle(self) -> None:
        """Let every runnable task run until all of them block (on this clock, an event, I/O...).

        Other tasks inside `settle()` count as blocked (so inside `autoadvance()`, time may move on
        while the caller settles).
        """
        loop = asyncio.get_running_loop()
        # asyncio's run queue (private but stable since 3.4): if, when we resume, it holds only the other
        # settlers' next steps, nobody else can run.
        ready: Sized | None = getattr(loop, "_ready", None)
        if ready is None:
            for _ in range(_BLIND_SETTLE_ROUNDS):
                await anyio.lowlevel.checkpoint()
            return
        _settling[loop] = _settling.get(loop, 0) + 1
        try:
            for _ in range(_MAX_SETTLE_ROUNDS):
                await anyio.lowlevel.checkpoint()
                if len(ready) < _settling[loop]:
                    return
        finally:
            _settling[loop] -= 1
        raise RuntimeError("the event loop never went idle: some task keeps rescheduling itself")

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking the sleepers due in deadline order."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        await self.advance_to(self._now + seconds)

    async def advance_to(self, when: float) -> None:
        """Move time forward to `when` (never backwards), waking the sleepers due in deadline order."""
        await self.settle()
        while (deadline := self.next_deadline()) is not None and deadline <= when:
            self._wake_first()
            await self.settle()
        self._now = max(self._now, when)
        await self.settle()

    @asynccontextmanager
    async def autoadvance(self) -> AsyncIterator[FakeClock]:
        """Within the block, jump to the next deadline whenever every task is blocked.

        If every task blocks with no deadline left (a deadlock, or real I/O), it waits for a new sleeper;
        to fail fast on a deadlock, start a watchdog task that sleeps past the expected end and raises.
        """
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._drive)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def _drive(self) -> None:
        while True:
            await self.settle()
            deadline = self.next_deadline()
            if deadline is None or deadline == math.inf:
                self._sleeper_added = anyio.Event()
                await self._sleeper_added.wait()
                self._sleeper_added = None
            else:
                self._wake_first()

    def _wake_first(self) -> None:
        deadline, _, sleeper = heapq.heappop(self._sleepers)
        self._now = max(self._now, deadline)
        sleeper.event.set()
