"""The account-wide rate limiter: a completion-stamped sliding-window log (SPEC 2.4, ANCHORS 4.4-4.6).

A request holds a *slot* from `acquire` until `release`, and the slot stays live for `period` seconds after
the response arrived (plus `grace` if the request was abandoned). A slot is granted only while fewer than
`max_requests` slots are live. The server sees a request after we admit it and before we read its response,
so no window of `period` seconds holds more than `max_requests` requests *as the server counts them*,
whatever the latency. (`aiolimiter.AsyncLimiter(200, 60)` alone lets 399 through in such a window.)

Two rules sit on top of the log. After a refusal (`pause`) the account's window is treated as full: when the
pause ends one *probe* goes out, and admission reopens only when it comes back without a new refusal. And an
optional token bucket (`Pacing`, aiolimiter) paces admissions, so that a backlog goes out evenly over the
period instead of `max_requests` at once at every window edge; the log, not the bucket, keeps the
guarantee. The bucket is the last gate before admission: the head of the queue takes a token once the
window has room, so tokens cannot pile up behind a full window and go out together when it opens.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Protocol, runtime_checkable

import anyio
import anyio.lowlevel
import attrs
from aiolimiter import AsyncLimiter

from _clientkit._clock import Clock, SystemClock

__all__ = [
    "DEFAULT_BURST",
    "Limiter",
    "Pacing",
    "PersistentWindow",
    "SlidingWindowLimiter",
    "Ticket",
    "slot",
]

DEFAULT_BURST = 10
"""The smallest default pacing burst: at most `max(DEFAULT_BURST, max_requests // 4)` requests at once out
of an idle limiter (`Pacing.even`). A quarter of the window lets a batch's tail (its last deletes, all due
together) go at once instead of trickling out at the long-run rate; the log keeps the limit either way."""

_logger = logging.getLogger("_clientkit")


@attrs.frozen
class Ticket:
    """Proof of one granted slot, to hand back to `release`.

    Attributes:
        seq: The slot's admission number (0, 1, 2, ... in the order slots were granted).
    """

    seq: int


class Limiter(Protocol):
    """What a client needs from a rate limiter; narrow enough for a shared store (Redis) to implement.

    Every implementation keeps these rules:

    - no window of `period` holds more than `max_requests` requests as the server counts them: a slot is
      live from `acquire` until `period` after its `release` stamp (plus a grace when abandoned);
    - waiting is first-come first-served and cancellable; a cancelled waiter takes no slot;
    - after `pause` (a refusal: the account's budget was spent elsewhere) the window counts as *full*: once
      the pause ends, exactly one request (the probe) is admitted; admission reopens only when the probe is
      released, not abandoned, with no `pause` between its admission and its release. A refusal of the
      probe pauses again. So a refusal is followed by at most one probe per pause, never a burst.
    """

    async def acquire(self) -> Ticket:
        """Wait first-come first-served for a free slot and take it; a cancelled waiter takes none."""
        ...

    async def release(self, ticket: Ticket, *, abandoned: bool = False) -> None:
        """Stamp the slot with the time now; `abandoned` keeps it live for an extra grace period first."""
        ...

    async def pause(self, seconds: float) -> None:
        """Admit nothing until `seconds` from now, then one probe (see the class docstring).

        Extends, never shortens, a pause already set. Call it *before* releasing the refused request's
        slot, so that a refused probe keeps the window closed.
        """
        ...


@runtime_checkable
class PersistentWindow(Protocol):
    """A limiter whose live window can be saved and loaded across process restarts (optional).

    Stamps are wall-clock epoch seconds (`time.time()`), the only clock two processes share.
    """

    def stamps(self) -> list[float]:
        """The stamps of every live slot, oldest first; an in-flight slot counts as stamped now."""
        ...

    def seed(self, stamps: Iterable[float]) -> None:
        """Load stamps saved by `stamps()` (maybe by a killed process) as live slots."""
        ...


@attrs.frozen
class Pacing:
    """A token bucket that paces the window log: `rate` requests per second, at most `burst` at once.

    It shapes a backlog (no second holds more than `burst + rate` admissions); the window log keeps the
    limit whatever the bucket does. Build the usual one with `Pacing.even(max_requests, period)`.
    """

    rate: float = attrs.field()
    burst: int = attrs.field()

    @rate.validator
    def _check_rate(self, _: object, value: float) -> None:
        if not _is_number(value) or not 0 < value < math.inf:
            raise ValueError(
                f"rate must be a finite number of requests per second > 0, got {value!r}"
            )

    @burst.validator
    def _check_burst(self, _: object, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"burst must be an int >= 1, got {value!r}")

    @classmethod
    def even(cls, max_requests: int, period: float, *, burst: int | None = None) -> Pacing:
        """The limit spread evenly over its period: `max_requests / period` per second, burst <= `burst`
        (default: a quarter of the window, at least `DEFAULT_BURST`)."""
        if burst is None:
            burst = max(DEFAULT_BURST, max_requests // 4)
        return cls(rate=max_requests / period, burst=max(1, min(burst, max_requests)))

    def bucket(self) -> AsyncLimiter:
        """A fresh in-process bucket (aiolimiter; it runs on the event loop's clock)."""
        return AsyncLimiter(self.burst, self.burst / self.rate)


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
    account, not between threads or processes (for that, see `RedisLimiter`).

    `pacing` (off by default here, on in the clients' default limiter) adds a token bucket as the last gate
    before admission. The bucket is aiolimiter and reads the *event loop's* clock, so give it only with a
    `clock` that reads loop time: `SystemClock` (asyncio's loop time is `time.monotonic`) or, in tests, a
    loop clock on a virtual-time loop. `wall_clock` (default `time.time`) converts stamps for `stamps()` / `seed()`.
    """

    __slots__ = (
        "_bucket",
        "_clock",
        "_expiries",
        "_grace",
        "_in_flight",
        "_max_requests",
        "_next_seq",
        "_pacing",
        "_paused_until",
        "_pauses",
        "_period",
        "_probe",
        "_probe_pauses",
        "_probing",
        "_waiters",
        "_wall_clock",
    )

    def __init__(
        self,
        max_requests: int,
        period: float,
        *,
        clock: Clock | None = None,
        grace: float = 0.0,
        pacing: Pacing | None = None,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        if isinstance(max_requests, bool) or not isinstance(max_requests, int) or max_requests < 1:
            raise ValueError(f"max_requests must be an int >= 1, got {max_requests!r}")
        if not _is_number(period) or not 0 < period < math.inf:
            raise ValueError(f"period must be a finite number of seconds > 0, got {period!r}")
        if not _is_number(grace) or not 0 <= grace < math.inf:
            raise ValueError(f"grace must be a finite number of seconds >= 0, got {grace!r}")
        if pacing is not None and not isinstance(pacing, Pacing):
            raise ValueError(f"pacing must be a Pacing or None, got {pacing!r}")
        self._max_requests = max_requests
        self._period = float(period)
        self._grace = float(grace)
        self._clock: Clock = SystemClock() if clock is None else clock
        self._wall_clock: Callable[[], float] = time.time if wall_clock is None else wall_clock
        self._pacing = pacing
        self._bucket: AsyncLimiter | None = None  # made on first use, inside the event loop
        self._in_flight: set[int] = set()  # seq of every acquired, unreleased slot
        self._expiries: list[float] = []  # min-heap: when each released slot stops being live
        self._waiters: deque[_Waiter] = deque()
        self._paused_until = -math.inf
        self._pauses = 0  # how many pauses were issued (a probe checks none came while it flew)
        self._probing = False  # after a pause: admit one probe, reopen when it comes back clean
        self._probe: int | None = None  # seq of the probe in flight
        self._probe_pauses = 0  # `_pauses` when the probe was admitted
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
    def pacing(self) -> Pacing | None:
        """The token bucket that paces admissions, if any."""
        return self._pacing

    @property
    def in_use(self) -> int:
        """Slots live now: in flight, or released less than `period` (plus any grace) ago."""
        return self._live(self._clock.monotonic())

    @property
    def probing(self) -> bool:
        """True from a pause until a probe came back without a refusal."""
        return self._probing

    def __repr__(self) -> str:
        return (
            f"SlidingWindowLimiter(max_requests={self._max_requests}, period={self._period}, "
            f"in_use={self.in_use})"
        )

    async def acquire(self) -> Ticket:
        """Wait first-come first-served for a free slot and take it; a cancelled waiter takes none.

        With pacing, the head of the queue takes a token from the bucket once the window has room, right
        before it is admitted: so admissions, not just tokens, keep the bucket's shape.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        bucket = self._bucket_for_loop()
        if (
            not self._waiters
            and self._has_room(self._clock.monotonic())
            and (bucket is None or bucket.has_capacity())
        ):
            if bucket is not None:
                await bucket.acquire()  # has capacity: returns without suspending
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
        token = bucket is None  # whether this waiter holds its pacing token
        try:
            while True:
                now = self._clock.monotonic()
                wake_at: float | None = None  # None: sleep until a release or a waiter ahead leaves
                pace = False  # sleep in the bucket for a token instead
                if self._waiters[0] is waiter:
                    if self._has_room(now):
                        if token:
                            break
                        pace = True
                    else:
                        wake_at = self._next_free_at()
                waiter.scope = anyio.CancelScope()
                try:
                    with waiter.scope:
                        if pace and bucket is not None:
                            await bucket.acquire()
                            token = True
                        elif wake_at is None:
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
        """Stamp the slot with the time now; it stays live `period` more (+ `grace` if abandoned).

        Releasing the probe reopens admission unless it was abandoned or a pause came while it flew.
        """
        try:
            self._in_flight.remove(ticket.seq)
        except KeyError:
            raise ValueError(
                f"ticket {ticket.seq} is not in flight (released twice, or from another limiter)"
            ) from None
        now = self._clock.monotonic()
        stamp = now + self._grace if abandoned else now
        heapq.heappush(self._expiries, stamp + self._period)
        if ticket.seq == self._probe:
            self._probe = None
            if not abandoned and self._pauses == self._probe_pauses:
                self._probing = False
                _logger.debug("rate limiter: probe answered, admission reopened")
        self._wake_head()

    async def pause(self, seconds: float) -> None:
        """Admit nothing until `seconds` from now, then one probe; extends, never shortens, a pause."""
        if not _is_number(seconds) or not 0 <= seconds < math.inf:
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        until = self._clock.monotonic() + seconds
        self._pauses += 1
        self._probing = True
        if until > self._paused_until:
            self._paused_until = until
            _logger.debug("rate limiter: paused", extra={"limiter_pause_seconds": seconds})
        self._wake_head()  # the head may be sleeping towards an earlier deadline

    # ------------------------------------------------------------------ PersistentWindow

    def stamps(self) -> list[float]:
        """Wall-clock stamps (`time.time()` epoch seconds) of every live slot, oldest first.

        A released slot gives its stamp (an abandoned one its stamp + grace); a slot in flight gives
        now + grace, the latest the server may still see it if this process dies now.
        """
        now = self._clock.monotonic()
        offset = self._wall_clock() - now
        self._live(now)
        released = [expiry - self._period + offset for expiry in self._expiries]
        in_flight = [now + self._grace + offset] * len(self._in_flight)
        return sorted(released + in_flight)

    def seed(self, stamps: Iterable[float]) -> None:
        """Load wall-clock stamps (from `stamps()`, maybe of a killed process) as released live slots.

        Stamps `period` old or older are dropped; stamps in the future (another host's clock, a clock
        step) count as stamped at most `grace` from now. Seeding never frees a slot, it only adds them.
        """
        walls = list(stamps)
        for wall in walls:
            if not _is_number(wall) or not math.isfinite(wall):
                raise ValueError(f"stamps must be finite epoch seconds, got {wall!r}")
        now = self._clock.monotonic()
        offset = self._wall_clock() - now
        latest = now + self._grace
        for wall in walls:
            expiry = min(wall - offset, latest) + self._period
            if expiry > now:
                heapq.heappush(self._expiries, expiry)
        self._wake_head()

    # ------------------------------------------------------------------ internals

    def _bucket_for_loop(self) -> AsyncLimiter | None:
        """The pacing bucket, made on first use (aiolimiter binds to the running loop)."""
        if self._pacing is not None and self._bucket is None:
            self._bucket = self._pacing.bucket()
        return self._bucket

    def _live(self, now: float) -> int:
        """Drop the stamps that have expired by `now`; count the live slots."""
        while self._expiries and self._expiries[0] <= now:
            heapq.heappop(self._expiries)
        return len(self._in_flight) + len(self._expiries)

    def _has_room(self, now: float) -> bool:
        return (
            now >= self._paused_until
            and self._probe is None
            and self._live(now) < self._max_requests
        )

    def _next_free_at(self) -> float | None:
        """When a slot can next be granted (after `_has_room` said no), or None if that needs a release."""
        if self._probe is not None:
            return None  # the probe must come back first
        if len(self._in_flight) + len(self._expiries) < self._max_requests:
            return self._paused_until  # only the pause is in the way
        if not self._expiries:
            return None  # every slot is in flight
        return max(self._expiries[0], self._paused_until)  # never more than max_requests live

    def _admit(self) -> Ticket:
        ticket = Ticket(self._next_seq)
        self._next_seq += 1
        self._in_flight.add(ticket.seq)
        if self._probing:
            self._probe = ticket.seq
            self._probe_pauses = self._pauses
            _logger.debug("rate limiter: probe admitted after a pause")
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
