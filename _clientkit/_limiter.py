"""The account-wide rate limiter: a completion-stamped sliding-window log (SPEC 2.4, ANCHORS 4.4-4.6).

A request holds a *slot* from `acquire` until `release`, and the slot stays live for `period` seconds after
the response arrived (plus `grace` if the request was abandoned). A slot is granted only while fewer than
`max_requests` slots are live. The server sees a request after we admit it and before we read its response,
so no window of `period` seconds holds more than `max_requests` requests *as the server counts them*,
whatever the latency. (`aiolimiter.AsyncLimiter(200, 60)` alone lets 399 through in such a window.)
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import anyio
import anyio.lowlevel
import attrs

from _clientkit._clock import Clock, SystemClock

__all__ = ["Limiter", "SlidingWindowLimiter", "Ticket", "slot"]

_logger = logging.getLogger("_clientkit")


@attrs.frozen
class Ticket:
    """Proof of one granted slot, to hand back to `release`.

    Attributes:
        seq: The slot's admission number (0, 1, 2, ... in the order slots were granted).
    """

    seq: int


class Limiter(Protocol):
    """What a client needs from a rate limiter; narrow enough for a shared store (Redis) to implement."""

    async def acquire(self) -> Ticket:
        """Wait first-come first-served for a free slot and take it; a cancelled waiter takes none."""
        ...

    async def release(self, ticket: Ticket, *, abandoned: bool = False) -> None:
        """Stamp the slot with the time now; `abandoned` keeps it live for an extra grace period first."""
        ...

    async def pause(self, seconds: float) -> None:
        """Admit nothing until `seconds` from now; extends, never shortens, a pause already set."""
        ...


class _Waiter:
    """One queued `acquire`; `scope` is set while it sleeps, so that a change of state can wake it."""

    __slots__ = ("scope",)

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None


class SlidingWindowLimiter:
    """In-process `Limiter`: at most `max_requests` live slots; a slot is live until release + `period`.

    In-flight requests hold their slot. Under backlog it admits again as soon as the oldest stamp is
    `period` old, so it sustains the limit minus one round trip per period. Waiters queue FIFO. `grace`
    (e.g. the read timeout) is how much longer an abandoned request may still reach the server. `clock`
    defaults to `SystemClock()`. One instance serves one event loop: share it between the clients of one
    account, not between threads or processes.
    """

    __slots__ = (
        "_clock",
        "_expiries",
        "_grace",
        "_in_flight",
        "_max_requests",
        "_next_seq",
        "_paused_until",
        "_period",
        "_waiters",
    )

    def __init__(
        self,
        max_requests: int,
        period: float,
        *,
        clock: Clock | None = None,
        grace: float = 0.0,
    ) -> None:
        if isinstance(max_requests, bool) or not isinstance(max_requests, int) or max_requests < 1:
            raise ValueError(f"max_requests must be an int >= 1, got {max_requests!r}")
        if not _is_number(period) or not 0 < period < math.inf:
            raise ValueError(f"period must be a finite number of seconds > 0, got {period!r}")
        if not _is_number(grace) or not 0 <= grace < math.inf:
            raise ValueError(f"grace must be a finite number of seconds >= 0, got {grace!r}")
        self._max_requests = max_requests
        self._period = float(period)
        self._grace = float(grace)
        self._clock: Clock = SystemClock() if clock is None else clock
        self._in_flight: set[int] = set()  # seq of every acquired, unreleased slot
        self._expiries: list[float] = []  # min-heap: when each released slot stops being live
        self._waiters: deque[_Waiter] = deque()
        self._paused_until = -math.inf
        self._next_seq = 0

    @property
    def max_requests(self) -> int:
        """The most slots live at once."""
        return self._max_requests

    @property
    def period(self) -> float:
        """Seconds a slot stays live after its release stamp."""
        return self._period

    @property
    def in_use(self) -> int:
        """Slots live now: in flight, or released less than `period` (plus any grace) ago."""
        return self._live(self._clock.monotonic())

    def __repr__(self) -> str:
        return (
            f"SlidingWindowLimiter(max_requests={self._max_requests}, period={self._period}, "
            f"in_use={self.in_use})"
        )

    async def acquire(self) -> Ticket:
        """Wait first-come first-served for a free slot and take it; a cancelled waiter takes none."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        if not self._waiters and self._has_room(self._clock.monotonic()):
            ticket = self._admit()
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return ticket

        waiter = _Waiter()
        self._waiters.append(waiter)
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug(
                "rate limiter: waiting for a slot",
                extra={
                    "limiter_queue": len(self._waiters),
                    "limiter_in_use": self.in_use,
                    "limiter_paused_for": max(0.0, self._paused_until - self._clock.monotonic()),
                },
            )
        try:
            while True:
                now = self._clock.monotonic()
                wake_at: float | None = None  # None: sleep until a release or a waiter ahead leaves
                if self._waiters[0] is waiter:
                    if self._has_room(now):
                        break
                    wake_at = self._next_free_at()
                waiter.scope = anyio.CancelScope()
                try:
                    with waiter.scope:
                        if wake_at is None:
                            await anyio.sleep_forever()
                        else:
                            await self._clock.sleep(wake_at - now)
                finally:
                    waiter.scope = None
        except BaseException:
            was_head = self._waiters[0] is waiter
            self._waiters.remove(waiter)
            if was_head:
                self._wake_head()
            raise
        self._waiters.popleft()
        ticket = self._admit()
        self._wake_head()  # the next waiter may fit too
        return ticket

    async def release(self, ticket: Ticket, *, abandoned: bool = False) -> None:
        """Stamp the slot with the time now; it stays live `period` more (+ `grace` if abandoned)."""
        try:
            self._in_flight.remove(ticket.seq)
        except KeyError:
            raise ValueError(
                f"ticket {ticket.seq} is not in flight (released twice, or from another limiter)"
            ) from None
        now = self._clock.monotonic()
        stamp = now + self._grace if abandoned else now
        heapq.heappush(self._expiries, stamp + self._period)
        self._wake_head()

    async def pause(self, seconds: float) -> None:
        """Admit nothing until `seconds` from now; extends, never shortens, a pause already set."""
        if not _is_number(seconds) or not 0 <= seconds < math.inf:
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        until = self._clock.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            _logger.debug("rate limiter: paused", extra={"limiter_pause_seconds": seconds})

    def _live(self, now: float) -> int:
        """Drop the stamps that have expired by `now`; count the live slots."""
        while self._expiries and self._expiries[0] <= now:
            heapq.heappop(self._expiries)
        return len(self._in_flight) + len(self._expiries)

    def _has_room(self, now: float) -> bool:
        return now >= self._paused_until and self._live(now) < self._max_requests

    def _next_free_at(self) -> float | None:
        """When a slot can next be granted (after `_has_room` said no), or None if that needs a release."""
        if len(self._in_flight) + len(self._expiries) < self._max_requests:
            return self._paused_until  # only the pause is in the way
        if not self._expiries:
            return None  # every slot is in flight
        return max(self._expiries[0], self._paused_until)  # never more than max_requests live

    def _admit(self) -> Ticket:
        ticket = Ticket(self._next_seq)
        self._next_seq += 1
        self._in_flight.add(ticket.seq)
        return ticket

    def _wake_head(self) -> None:
        """Make the first waiter look at the state again."""
        if self._waiters and (scope := self._waiters[0].scope) is not None:
            scope.cancel()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


@asynccontextmanager
async def slot(limiter: Limiter) -> AsyncIterator[Ticket]:
    """Hold one slot around one request: acquire, yield the ticket, release stamped at exit.

    The release is shielded, so a cancelled request still stamps its slot. If the body raised (an error or
    a cancellation) the request may still reach the server, so the slot is released as abandoned.
    """
    ticket = await limiter.acquire()
    abandoned = True
    try:
        yield ticket
        abandoned = False
    finally:
        with anyio.CancelScope(shield=True):
            await limiter.release(ticket, abandoned=abandoned)
