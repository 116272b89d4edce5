"""One account's budget shared by many processes and hosts, held in Redis (SPEC 2.4; issue 13).

`RedisLimiter` keeps the in-process limiter's guarantee across every process that shares its `key`: no
sliding window of `period` holds more than `max_requests` requests *as the server counts them*. What the
anchors do (notes/limiter-and-scale-out.md; ANCHORS 4.2-4.3, 7):

- `limits` (moving window on a Redis list, one Lua script) stamps at *admission* with the client's clock,
  keeps no in-flight state and cannot block until there is capacity (its issue #221);
- `pyrate-limiter` (RedisBucket: a sorted set) uses the client's clock and waits by sleeping and polling;
- Stripe's concurrent-requests limiter keeps request ids with start times, drops entries older than a TTL
  as "probably lost", one Lua script per step; redis-cell (GCRA) uses the Redis host's clock, as a module.

None stamps at completion, counts requests in flight, turns a dead holder's slot into a stamp, or queues
fairly across processes. This one does: a slot is a *lease* while in flight and a *stamp* when its
response arrives; a lease that expires (its holder died) becomes a stamp at its deadline, so a dead
process's request still counts and is never deleted; time is Redis `TIME` only (hosts may disagree);
each step is one atomic script (`_redis_scripts`, loaded with `register_script`), its keys in one hash
tag (Redis Cluster); waiters take tickets from a counter (`HINCRBY`) and are admitted in ticket order, one
waiter per process at a time (a local FIFO in front), so no thundering herd; a refusal pauses every process
and is followed by one probe (the `Limiter` rule); a store found empty (Redis restarted without
persistence) pauses one period instead of opening an empty window. The pacing bucket lives in Redis too,
so pacing is for the account as a whole.

Redis unreachable: `acquire` raises `LimiterUnavailableError` in every process, or, with
`fallback_share`, falls back to an in-process limiter at that share of the limit (never unlimited).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.lowlevel

from _clientkit._clock import Clock, SystemClock
from _clientkit._limiter import DEFAULT_BURST, Pacing, SlidingWindowLimiter, Ticket
from _clientkit._redis_scripts import ACQUIRE, LEAVE, PAUSE, RELEASE

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["LimiterUnavailableError", "RedisLimiter"]

_logger = logging.getLogger("_clientkit")

_US = 1_000_000  # microseconds per second: the scripts' unit


class LimiterUnavailableError(RuntimeError):
    """The shared limiter's store (Redis) cannot be reached, and no fallback was configured."""


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError)


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and reprs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    netloc = f"{user}{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):  # type: ignore[operator]
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


class RedisLimiter:
    """A `Limiter` whose window, queue, pause and pacing live in Redis, shared by every process using `key`.

    Build it with `RedisLimiter.from_url("redis://host:6379/0", key="recuro:<account>")` and pass it as
    `limiter=` to the clients of every process that uses the account; close it (`aclose()` or
    `async with`) when done. Arguments:

    - `max_requests`, `period`: the account's limit (200 per 60 s for Recuro).
    - `pacing`: `"even"` (default: the limit spread evenly over the period, bursts of at most 10, for the
      account as a whole), `"off"`, or a `Pacing`.
    - `lease`: how long an admitted request may stay in flight; a lease not released by then (its process
      died) becomes a stamp at its deadline. Must exceed the longest request (the client's timeout).
    - `grace`: how much longer an abandoned request may still reach the server (the read timeout).
    - `poll`: how often a waiter blocked by requests in flight elsewhere asks again.
    - `cold_start_pause`: on a store found empty by a process that never saw it (a first start, or a
      restart without persistence), pause one period (default True: the account's window may hold
      requests no one remembers). A process that saw the store before always pauses on losing it.
    - `fallback_share`: when Redis is unreachable, use an in-process limiter at this share of the limit
      (e.g. 0.25 for four processes) instead of raising `LimiterUnavailableError`; it returns to Redis once
      Redis answers again and its own window has drained. Safe only if every process falls back (Redis
      down), since the others keep the whole budget otherwise.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        key: str,
        max_requests: int = 200,
        period: float = 60.0,
        pacing: Pacing | Literal["even", "off"] = "even",
        lease: float = 120.0,
        grace: float = 30.0,
        poll: float = 0.05,
        cold_start_pause: bool = True,
        fallback_share: float | None = None,
        clock: Clock | None = None,
        url: str | None = None,
    ) -> None:
        if not isinstance(key, str) or not key or "{" in key or "}" in key:
            raise ValueError(f"key must be a non-empty string without braces, got {key!r}")
        if isinstance(max_requests, bool) or not isinstance(max_requests, int) or max_requests < 1:
            raise ValueError(f"max_requests must be an int >= 1, got {max_requests!r}")
        self._period = _check_positive("period", period)
        self._lease = _check_positive("lease", lease)
        self._grace = _check_positive("grace", grace, allow_zero=True)
        self._poll = _check_positive("poll", poll)
        if pacing == "even":
            # a small burst: shared by processes, a quarter of the window at once would go to whichever
            # asks first (the in-process default is larger: there one gate orders the queue)
            self._pacing: Pacing | None = Pacing.even(
                max_requests, self._period, burst=DEFAULT_BURST
            )
        elif pacing == "off":
            self._pacing = None
        elif isinstance(pacing, Pacing):
            self._pacing = pacing
        else:
            raise ValueError(f"pacing must be 'even', 'off' or a Pacing, got {pacing!r}")
        if fallback_share is not None and (
            isinstance(fallback_share, bool)
            or not isinstance(fallback_share, int | float)
            or not 0 < fallback_share <= 1
        ):
            raise ValueError(
                f"fallback_share must be a number in (0, 1] or None, got {fallback_share!r}"
            )
        self._redis = redis
        self._key = key
        self._url = _safe_url(url) if url is not None else None
        self._max_requests = max_requests
        self._cold_start_pause = cold_start_pause
        self._fallback_share = fallback_share
        self._clock: Clock = clock or SystemClock()
        tag = "{" + key + "}"
        self._keys = [f"{tag}:{name}" for name in ("state", "live", "done", "queue", "beats")]
        self._acquire_script: AsyncScript = redis.register_script(ACQUIRE)
        self._release_script: AsyncScript = redis.register_script(RELEASE)
        self._pause_script: AsyncScript = redis.register_script(PAUSE)
        self._leave_script: AsyncScript = redis.register_script(LEAVE)
        self._epoch = ""  # the store's epoch last seen: a different one means the state was lost
        self._process = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._next_seq = 0
        self._slots: dict[int, str | Ticket] = {}  # our seq -> Redis slot id, or a fallback ticket
        # one waiter per process talks to Redis; the rest queue here, FIFO
        self._head = anyio.Lock()
        self._nudge: anyio.Event | None = None  # set when a slot of ours is released
        self._local: SlidingWindowLimiter | None = None  # the fallback, while Redis is unreachable
        self._local_retry_at = 0.0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key: str,
        socket_timeout: float = 5.0,
        **kwargs: Any,
    ) -> RedisLimiter:
        """Connect to Redis at `url` (redis://, rediss://, unix://) with redis-py's asyncio client.

        `socket_timeout` bounds each Redis call (connect and reply); other keyword arguments go to
        `RedisLimiter`. Needs the `redis` extra: ``pip install 'recuro-mediacrush-async[redis]'``.
        """
        try:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import ExponentialBackoff
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "RedisLimiter needs redis-py: pip install 'recuro-mediacrush-async[redis]'"
            ) from exc
        client = Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        )
        return cls(client, key=key, url=url, **kwargs)

    # ------------------------------------------------------------------ lifecycle and facts

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Redis connections (leases still held expire into stamps on their own)."""
        await self._redis.aclose()

    @property
    def max_requests(self) -> int:
        """The most slots live at once, across every process sharing the key."""
        return self._max_requests

    @property
    def period(self) -> float:
        """Seconds a slot stays live after its release stamp."""
        return self._period

    @property
    def key(self) -> str:
        """The account's key; every Redis key of this limiter is `{key}:<name>`."""
        return self._key

    @property
    def pacing(self) -> Pacing | None:
        """The account-wide token bucket, if any."""
        return self._pacing

    @property
    def falling_back(self) -> bool:
        """True while Redis is unreachable and the in-process fallback admits instead."""
        return self._local is not None

    def __repr__(self) -> str:
        where = f" url={self._url!r}" if self._url else ""
        return (
            f"RedisLimiter(key={self._key!r}, max_requests={self._max_requests}, "
            f"period={self._period}{where})"
        )

    # ------------------------------------------------------------------ the Limiter protocol

    async def acquire(self) -> Ticket:
        """Wait in ticket order across processes for a free slot and lease it; cancellable."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        async with self._head:
            if self._local is not None and not await self._back_to_redis():
                local = await self._local.acquire()
                return self._ticket(local)
            try:
                slot_id = await self._wait_for_slot()
            except _Unavailable as exc:
                if self._fallback_share is None:
                    raise LimiterUnavailableError(self._unavailable(exc.cause)) from exc.cause
                self._fall_back(exc.cause)
                assert self._local is not None  # noqa: S101 - set just above
                local = await self._local.acquire()
                return self._ticket(local)
            return self._ticket(slot_id)

    async def release(self, ticket: Ticket, *, abandoned: bool = False) -> None:
        """Stamp the slot with Redis's time now (plus `grace` if abandoned).

        If Redis cannot be reached the lease stays, and becomes a stamp at its deadline: later than the
        truth, never earlier, so nothing is raised.
        """
        try:
            held = self._slots.pop(ticket.seq)
        except KeyError:
            raise ValueError(
                f"ticket {ticket.seq} is not in flight (released twice, or from another limiter)"
            ) from None
        if isinstance(held, Ticket):
            if self._local is not None:
                await self._local.release(held, abandoned=abandoned)
            return
        args = [held, "1" if abandoned else "0", round(self._grace * _US)]
        try:
            await self._run(self._release_script, args)
        except _Unavailable as exc:
            _logger.warning(
                "rate limiter: could not stamp a slot in Redis; its lease will count it",
                extra={"limiter_key": self._key, "error": type(exc.cause).__name__},
            )
        if self._nudge is not None:
            self._nudge.set()

    async def pause(self, seconds: float) -> None:
        """Pause every process sharing the key for `seconds`, then admit one probe (the `Limiter` rule)."""
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 <= seconds < math.inf
        ):
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        if self._local is not None:
            await self._local.pause(seconds)
        try:
            await self._run(self._pause_script, [round(seconds * _US)])
        except _Unavailable as exc:
            _logger.warning(
                "rate limiter: could not pause the shared window in Redis",
                extra={"limiter_key": self._key, "error": type(exc.cause).__name__},
            )
            if self._local is None and self._fallback_share is not None:
                self._fall_back(exc.cause)
                assert self._local is not None  # noqa: S101 - set just above
                await self._local.pause(seconds)
        else:
            _logger.debug("rate limiter: paused", extra={"limiter_pause_seconds": seconds})

    # ------------------------------------------------------------------ PersistentWindow

    def stamps(self) -> list[float]:
        """Nothing for a journal to keep: the window lives in Redis, which outlasts this process."""
        return []

    def seed(self, stamps: Iterable[float]) -> None:
        """Ignored: Redis already holds every process's stamps (and a store found empty pauses)."""
        del stamps

    # ------------------------------------------------------------------ internals

    def _ticket(self, held: str | Ticket) -> Ticket:
        ticket = Ticket(self._next_seq)
        self._next_seq += 1
        self._slots[ticket.seq] = held
        return ticket

    async def _wait_for_slot(self) -> str:
        """As the head of this process's queue, ask Redis until it grants a slot; return the slot id."""
        waiter = f"{self._process}:{self._next_seq}"
        queue_ticket = ""
        margin = round(max(2.0, 10 * self._poll) * _US)
        args_tail = [round(self._lease * _US), margin, round(self._poll * _US)]
        try:
            while True:
                reply = await self._run(self._acquire_script, [waiter, queue_ticket, *args_tail])
                if int(reply[0]) == 1:
                    return _text(reply[1])
                wait = int(reply[1]) / _US
                queue_ticket = _text(reply[2])
                self._nudge = anyio.Event()
                with anyio.move_on_after(wait):
                    await self._nudge.wait()  # a release of ours may free a slot sooner
                self._nudge = None
        except BaseException:
            if queue_ticket:
                # if Redis is gone, its heartbeat lapses and the others drop it
                with anyio.CancelScope(shield=True), contextlib.suppress(_Unavailable):
                    await self._run(self._leave_script, [waiter])
            raise

    async def _run(self, script: AsyncScript, args: Sequence[str | int]) -> list[Any]:
        """Run one step; learn the epoch; log a lost store; return the step's answer.

        Redis errors become `_Unavailable`.
        """
        common: list[str | int | float] = [
            self._max_requests,
            round(self._period * _US),
            repr(self._pacing.rate / _US) if self._pacing is not None else 0,
            self._pacing.burst if self._pacing is not None else 1,
            self._epoch,
            "1" if self._cold_start_pause else "0",
            round((self._period + self._lease + self._grace) * 1000) + 60_000,
        ]
        try:
            reply: list[Any] = await script(keys=self._keys, args=[*common, *args])
        except _redis_errors() as exc:
            raise _Unavailable(exc) from exc
        epoch, lost = _text(reply[0]), _text(reply[1])
        if lost == "1":
            _logger.warning(
                "rate limiter: the shared window in Redis was empty (a restart without persistence, "
                "or a first start); pausing one period",
                extra={"limiter_key": self._key, "limiter_pause_seconds": self._period},
            )
        self._epoch = epoch
        return reply[2:]

    def _unavailable(self, cause: BaseException) -> str:
        where = self._url or "the configured Redis"
        return (
            f"the shared rate limiter (key {self._key!r}) cannot reach Redis at {where}: "
            f"{type(cause).__name__}: {str(cause).rstrip('.')}. No request was sent. Start Redis, or pass "
            f"fallback_share= to fall back to a local share of the limit."
        )

    def _fall_back(self, cause: BaseException) -> None:
        assert self._fallback_share is not None  # noqa: S101 - callers check
        share = max(1, math.floor(self._max_requests * self._fallback_share))
        pacing = None
        if self._pacing is not None:
            pacing = Pacing(
                rate=self._pacing.rate * self._fallback_share,
                burst=max(1, min(self._pacing.burst, share)),
            )
        self._local = SlidingWindowLimiter(
            share,
            self._period,
            grace=self._grace,
            pacing=pacing if isinstance(self._clock, SystemClock) else None,
            clock=self._clock,
        )
        self._local_retry_at = self._clock.monotonic() + self._period
        _logger.warning(
            "rate limiter: Redis unreachable, falling back to a local share of the limit",
            extra={
                "limiter_key": self._key,
                "limiter_share": share,
                "error": type(cause).__name__,
            },
        )

    async def _back_to_redis(self) -> bool:
        """While falling back: once a period has passed, if Redis answers, drain the local window, switch."""
        local = self._local
        assert local is not None  # noqa: S101 - callers check
        if self._clock.monotonic() < self._local_retry_at:
            return False
        try:
            await self._redis.ping()
        except _redis_errors():
            self._local_retry_at = self._clock.monotonic() + self._period
            return False
        while local.in_use:  # our local requests must age out before Redis alone counts again
            await self._clock.sleep(min(self._poll * 10, self._period))
        self._local = None
        _logger.warning("rate limiter: Redis reachable again", extra={"limiter_key": self._key})
        return True


class _Unavailable(Exception):
    """Internal: Redis did not answer; never escapes this module."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
