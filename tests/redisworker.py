"""One worker process of the shared-budget tests: a Recuro client whose limiter is a `RedisLimiter`.

    python tests/redisworker.py calls BASE_URL REDIS_URL KEY REQUESTS PERIOD RETRIES   # ListMedia calls
    python tests/redisworker.py hold REDIS_URL KEY SLOTS PERIOD LEASE          # take slots, never release

It prints "ready" and waits for a line on stdin before it starts, so that the test starts every worker at
once. `calls` prints one JSON line at the end: {"waits": [seconds per call], "unavailable": n}; a call
that meets `LimiterUnavailableError` (Redis restarting) is tried again up to RETRIES times, as a service
would. `hold`
prints "holding" once it holds its slots, then sleeps until it is killed. A `LimiterUnavailableError` is
printed to stderr with exit status 3.
"""

from __future__ import annotations

import json
import sys
import time

import anyio

from recuro_async import LimiterUnavailableError, RateLimit, RecuroClient, RedisLimiter
from recuro_async.testing import DEMO_API_KEY, DEMO_API_SECRET

CONCURRENCY = 20


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _calls(
    base_url: str, redis_url: str, key: str, requests: int, period: float, retries: int
) -> None:
    limiter = RedisLimiter.from_url(
        redis_url, key=key, max_requests=200, period=period, lease=5.0, grace=1.0, poll=0.02
    )
    waits: list[float] = []
    unavailable = 0
    async with (
        limiter,
        RecuroClient(
            DEMO_API_KEY,
            DEMO_API_SECRET,
            base_url=base_url,
            rate_limit=RateLimit(200, period),
            limiter=limiter,
            max_retries=0,
        ) as client,
    ):
        _say("ready")
        await anyio.to_thread.run_sync(sys.stdin.readline)
        remaining = iter(range(requests))

        async def worker() -> None:
            nonlocal unavailable
            for _ in remaining:
                began = time.monotonic()
                for attempt in range(retries + 1):
                    try:
                        await client.list_media()
                        break
                    except LimiterUnavailableError:
                        unavailable += 1
                        if attempt == retries:
                            raise
                        await anyio.sleep(0.1)
                waits.append(time.monotonic() - began)

        async with anyio.create_task_group() as tg:
            for _ in range(CONCURRENCY):
                tg.start_soon(worker)
    _say(json.dumps({"waits": waits, "unavailable": unavailable}))


async def _hold(redis_url: str, key: str, slots: int, period: float, lease: float) -> None:
    async with RedisLimiter.from_url(
        redis_url, key=key, max_requests=200, period=period, lease=lease, pacing="off"
    ) as limiter:
        _say("ready")
        await anyio.to_thread.run_sync(sys.stdin.readline)
        for _ in range(slots):
            await limiter.acquire()
        _say("holding")
        await anyio.sleep_forever()


def main(argv: list[str]) -> int:
    try:
        if argv[0] == "calls":
            base_url, redis_url, key, requests, period, retries = argv[1:]
            anyio.run(_calls, base_url, redis_url, key, int(requests), float(period), int(retries))
        elif argv[0] == "hold":
            redis_url, key, slots, period, lease = argv[1:]
            anyio.run(_hold, redis_url, key, int(slots), float(period), float(lease))
        else:
            sys.stderr.write(f"unknown mode {argv[0]!r}\n")
            return 2
    except BaseException as exc:  # a task group wraps it in a group
        unavailable = _find(exc)
        if unavailable is None:
            raise
        sys.stderr.write(f"LimiterUnavailableError: {unavailable}\n")
        return 3
    return 0


def _find(exc: BaseException) -> LimiterUnavailableError | None:
    if isinstance(exc, LimiterUnavailableError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _find(inner)) is not None:
                return found
    return None


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
