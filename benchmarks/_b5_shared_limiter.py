"""B5: the shared limiter (`RedisLimiter`) side by side with the in-process `SlidingWindowLimiter`.

Real time, a real `redis-server` on a unix socket (persistence off) and real worker processes. Two figures:
the cost of one acquire (+ release) with no contention, median and p99; and the share of the limit used
when 1, 4 or 16 processes each keep a backlog, with the most admissions in any window next to it (one
in-process limiter per process overruns the account N-fold: that is the problem the shared one solves).

A worker is this module run as a script: ``python -m benchmarks._b5_shared_limiter worker ...``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio

from _clientkit._limiter import Pacing, SlidingWindowLimiter, slot
from _clientkit._redis_limiter import RedisLimiter
from benchmarks._measure import ROOT, Section, Settings, Table, Target, fmt, max_in_window, median

LIMIT = 100
PERIOD = 1.0
LATENCY = 0.005  # each request's round trip
CONCURRENCY = 20  # backlog tasks per process
KEY = "bench:b5"


# --------------------------------------------------------------------------------------- redis


@contextmanager
def _redis_server() -> Iterator[str]:
    """A redis-server on a unix socket in a temp dir; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("B5 needs redis-server (Debian: apt-get install -y redis-server)")
    import redis

    with tempfile.TemporaryDirectory(prefix="b5-") as tmp:
        sock = Path(tmp) / "redis.sock"
        process = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    with redis.Redis(unix_socket_path=str(sock), socket_timeout=1) as probe:
                        probe.ping()
                    break
                except (redis.ConnectionError, OSError):
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise
                    time.sleep(0.02)
            yield f"unix://{sock}"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)


def _flush(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as client:
        client.flushall()


# --------------------------------------------------------------------------------------- acquire cost


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _cost_local(n: int) -> list[float]:
    limiter = SlidingWindowLimiter(10**9, PERIOD)
    out = []
    for _ in range(n):
        began = time.perf_counter()
        ticket = await limiter.acquire()
        out.append(time.perf_counter() - began)
        await limiter.release(ticket)
    return out


async def _cost_redis(url: str, n: int) -> tuple[list[float], list[float]]:
    acquires, releases = [], []
    async with RedisLimiter.from_url(
        url,
        key=KEY + ":cost",
        max_requests=10**9,
        period=PERIOD,
        pacing="off",
        cold_start_pause=False,
    ) as limiter:
        for _ in range(n):
            began = time.perf_counter()
            ticket = await limiter.acquire()
            mid = time.perf_counter()
            await limiter.release(ticket)
            acquires.append(mid - began)
            releases.append(time.perf_counter() - mid)
    return acquires, releases


# --------------------------------------------------------------------------------------- share used


async def _worker(kind: str, url: str, start_at: float, duration: float) -> None:
    """Keep a backlog through one limiter from `start_at` for `duration`; print admission times."""
    if kind == "redis":
        limiter: RedisLimiter | SlidingWindowLimiter = RedisLimiter.from_url(
            url, key=KEY, max_requests=LIMIT, period=PERIOD, cold_start_pause=False, lease=10.0
        )
    else:
        limiter = SlidingWindowLimiter(LIMIT, PERIOD, pacing=Pacing.even(LIMIT, PERIOD))
    admitted: list[float] = []
    late = max(0.0, time.monotonic() - start_at)
    await anyio.sleep(max(0.0, start_at - time.monotonic()))
    end = start_at + duration

    async def backlog() -> None:
        while time.monotonic() < end:
            async with slot(limiter):
                admitted.append(time.monotonic())
                await anyio.sleep(LATENCY)

    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENCY):
            tg.start_soon(backlog)
    if isinstance(limiter, RedisLimiter):
        await limiter.aclose()
    sys.stdout.write(json.dumps({"admitted": admitted, "late": late}) + "\n")


def _share(kind: str, url: str, processes: int, duration: float) -> tuple[float, int, float]:
    """Run `processes` workers; return (share of the limit used, most in any window, startup lateness)."""
    if kind == "redis":
        _flush(url)
        asyncio_prime = RedisLimiter.from_url(
            url, key=KEY, max_requests=LIMIT, period=PERIOD, cold_start_pause=False
        )

        async def prime() -> None:
            async with asyncio_prime:
                await asyncio_prime.pause(0.0)  # creates the store; the probe goes first
                await asyncio_prime.release(await asyncio_prime.acquire())

        anyio.run(prime)
    start_at = time.monotonic() + 1.0 + 0.25 * processes  # time for every interpreter to start
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "benchmarks._b5_shared_limiter", "worker", kind, url]
    workers = [
        subprocess.Popen(
            [*command, repr(start_at), repr(duration)],
            stdout=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        for _ in range(processes)
    ]
    admitted: list[float] = []
    late = 0.0
    for worker in workers:
        out, _ = worker.communicate(timeout=duration + 120)
        if worker.returncode != 0:
            raise RuntimeError(f"a B5 worker failed with status {worker.returncode}")
        result = json.loads(out.decode().strip().splitlines()[-1])
        admitted += result["admitted"]
        late = max(late, result["late"])
    # Steady state: skip the first period (the burst out of an idle limiter) and the last one.
    steady = [t for t in admitted if start_at + PERIOD <= t < start_at + duration - PERIOD]
    share = len(steady) / ((duration - 2 * PERIOD) / PERIOD * LIMIT)
    return share, max_in_window(admitted, PERIOD), late


# --------------------------------------------------------------------------------------- report


def run(settings: Settings) -> Section:
    """Run B5 and report it."""
    started = time.perf_counter()
    quick = settings.quick
    cost_n = 500 if quick else 5000
    duration = 4.0 if quick else 8.0
    counts = (1, 4) if quick else (1, 4, 16)

    section = Section(
        "B5", "shared limiter (Redis) vs in-process: acquire cost, share of the limit used"
    )
    section.method = [
        (
            f"A real redis-server 7 on a unix socket (persistence off). Cost: {cost_n:,} uncontended "
            "acquire + release pairs in one process, `RedisLimiter` (pacing off, limit never reached) vs "
            "`SlidingWindowLimiter`; each acquire timed alone."
        ),
        (
            f"Share: N worker processes, each {CONCURRENCY} tasks keeping a backlog of requests of "
            f"{LATENCY * 1000:g} ms for {duration:g} s, limit {LIMIT} per {PERIOD:g} s (default pacing: even, "
            "burst 10). Shared: one `RedisLimiter` key for all. In-process: one paced "
            "`SlidingWindowLimiter` per process (what N processes get without Redis). Share = admissions "
            "in the steady state (first and last period excluded) over the limit's rate."
        ),
    ]

    async def costs() -> tuple[list[float], tuple[list[float], list[float]]]:
        return await _cost_local(cost_n), await _cost_redis(url, cost_n)

    with _redis_server() as url:
        local, (redis_acq, redis_rel) = anyio.run(costs)
        shares: dict[tuple[str, int], tuple[float, int, float]] = {}
        for n in counts:
            for kind in ("redis", "local"):
                shares[kind, n] = _share(kind, url, n, duration)

    us = 1e6
    section.tables.append(
        Table(
            "Cost of one acquire, uncontended (microseconds)",
            ["limiter", "acquire median", "acquire p99", "release median"],
            [
                [
                    "SlidingWindowLimiter (in-process)",
                    fmt(median(local) * us, 1),
                    fmt(_percentile(local, 0.99) * us, 1),
                    "-",
                ],
                [
                    "RedisLimiter (unix socket)",
                    fmt(median(redis_acq) * us, 1),
                    fmt(_percentile(redis_acq, 0.99) * us, 1),
                    fmt(median(redis_rel) * us, 1),
                ],
            ],
        )
    )
    rows = []
    for n in counts:
        shared, local_n = shares["redis", n], shares["local", n]
        rows.append(
            [
                str(n),
                f"{shared[0] * 100:.1f} %",
                str(shared[1]),
                f"{local_n[0] * 100:.1f} %",
                str(local_n[1]),
            ]
        )
    section.tables.append(
        Table(
            f"Share of the limit used under backlog, and most admissions in any {PERIOD:g} s window "
            f"(limit {LIMIT})",
            [
                "processes",
                "RedisLimiter: share",
                "RedisLimiter: worst window",
                "in-process per process: share",
                "in-process: worst window",
            ],
            rows,
        )
    )
    worst_shared = max(shares["redis", n][1] for n in counts)
    section.targets = [
        Target(
            "requests in any window, all processes together (B5)",
            f"never above {LIMIT}",
            f"RedisLimiter {worst_shared} with up to {max(counts)} processes; in-process limiters "
            f"{max(shares['local', n][1] for n in counts)}",
            worst_shared <= LIMIT,
            "admission-counted",
        ),
        Target(
            "share of the limit used, shared limiter (B5)",
            ">= 95 %",
            ", ".join(f"{n} proc {shares['redis', n][0] * 100:.1f} %" for n in counts),
            min(shares["redis", n][0] for n in counts) >= 0.95,
            "steady state",
        ),
    ]
    late = max(v[2] for v in shares.values())
    section.notes = [f"Latest worker start after the common start time: {late:.2f} s."]
    section.seconds = time.perf_counter() - started
    return section


def _main(argv: list[str]) -> int:
    if argv[:1] != ["worker"]:
        sys.stderr.write(
            "usage: python -m benchmarks._b5_shared_limiter worker KIND URL START DURATION\n"
        )
        return 2
    kind, url, start_at, duration = argv[1:]
    anyio.run(_worker, kind, url, float(start_at), float(duration))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
