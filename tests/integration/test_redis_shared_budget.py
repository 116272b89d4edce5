"""Acceptance of issue 13: several *processes* share one account's budget through a real Redis.

Worker processes (tests/redisworker.py) call the Recuro emulator (time scale 0.05: a 3 s window of 200)
with a `RedisLimiter` on one key; the emulator's request log is the server's count. Redis is a real
redis-server on a unix socket, persistence off.
"""

from __future__ import annotations

import bisect
import json
import os
import signal
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.abc
import pytest
from redisserver import RedisServer

from recuro_async import RedisLimiter
from recuro_async.testing import EmulatorConfig, make_samples, run_emulator

pytestmark = pytest.mark.slow

LIMIT = 200
SCALE = 0.05
PERIOD = 60.0 * SCALE  # 3 s
WORKER = Path(__file__).resolve().parents[1] / "redisworker.py"
KEY = "recuro:acceptance"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _worst(times: list[float], period: float) -> int:
    ordered = sorted(times)
    return max(bisect.bisect_left(ordered, t + period) - i for i, t in enumerate(ordered))


class Worker:
    """One worker process: started, told to go, read to its end."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._buffer = b""

    async def line(self) -> str:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive()
            self._buffer += chunk
        head, self._buffer = self._buffer.split(b"\n", 1)
        return head.decode()

    async def go(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(b"go\n")

    async def finish(self) -> tuple[int, dict[str, object] | None, str]:
        """Wait for exit; return (status, the JSON summary if any, stderr)."""
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        rest = b""
        async for chunk in self.process.stdout:
            rest += chunk
        err = b""
        async for chunk in self.process.stderr:
            err += chunk
        status = await self.process.wait()
        text = (self._buffer + rest).decode().strip()
        summary = json.loads(text.splitlines()[-1]) if text else None
        return status, summary, err.decode()


async def _start(*args: str) -> Worker:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = await anyio.open_process([sys.executable, str(WORKER), *args], env=env)
    worker = Worker(process)
    ready = await worker.line()
    assert ready == "ready", ready
    return worker


def _calls(emulator_url: str, redis_url: str, requests: int = 100, retries: int = 0) -> list[str]:
    return ["calls", emulator_url, redis_url, KEY, str(requests), str(PERIOD), str(retries)]


def _arrivals(emulator) -> list[float]:
    entries = [e for e in emulator.log if e.action == "ListMedia"]
    assert all(e.status == 200 for e in entries), "the emulator refused requests for rate"
    return [e.time for e in entries]


async def _prime(redis_server: RedisServer) -> None:
    """Create the store as a previous run would have (so no cold-start pause): one request's slot."""
    async with RedisLimiter.from_url(
        redis_server.url, key=KEY, max_requests=LIMIT, period=PERIOD, cold_start_pause=False
    ) as limiter:
        await limiter.release(await limiter.acquire())


async def test_four_processes_share_the_budget_use_it_and_are_served_fairly(redis_server):
    """4 processes x 100 requests: no 3 s window over 200 as the server counts, >= 95 % of the limit used under backlog, and no process starved: the longest wait is within twice the mean."""
    await _prime(redis_server)
    async with run_emulator(EmulatorConfig(time_scale=SCALE)) as running:
        workers = [await _start(*_calls(running.base_url, redis_server.url)) for _ in range(4)]
        for worker in workers:
            await worker.go()
        results = [await worker.finish() for worker in workers]
        arrivals = _arrivals(running.emulator)
    assert [status for status, _, _ in results] == [0, 0, 0, 0], [err for _, _, err in results]
    assert len(arrivals) == 400
    assert _worst(arrivals, PERIOD) <= LIMIT
    span = max(arrivals) - min(arrivals)
    used = (len(arrivals) - 1) / span / (LIMIT / PERIOD)
    assert used >= 0.95, f"used {used:.1%} of the limit under backlog"
    waits = [w for _, summary, _ in results for w in summary["waits"]]  # type: ignore[index,union-attr]
    assert len(waits) == 400
    assert max(waits) <= 2 * statistics.fmean(waits)
    means = [statistics.fmean(summary["waits"]) for _, summary, _ in results]  # type: ignore[index,arg-type]
    assert max(means) <= 2 * min(means), f"per-process mean waits {means}"


async def test_a_killed_process_slots_still_count_and_return_within_lease_plus_period(redis_server):
    """A process holding 50 slots is SIGKILLed: the others go on, its 50 count until lease + period, then free."""
    lease = 2.0
    async with run_emulator(EmulatorConfig(time_scale=SCALE)) as running:
        holder = await _start("hold", redis_server.url, KEY, "50", str(PERIOD), str(lease))
        await holder.go()
        assert await holder.line() == "holding"
        held_at = anyio.current_time()
        holder.process.send_signal(signal.SIGKILL)
        await holder.process.wait()
        others = [await _start(*_calls(running.base_url, redis_server.url)) for _ in range(3)]
        for worker in others:
            await worker.go()
        results = [await worker.finish() for worker in others]
        arrivals = _arrivals(running.emulator)
    assert [status for status, _, _ in results] == [0, 0, 0], [err for _, _, err in results]
    assert len(arrivals) == 300
    # The holder's 50 count as if they reached the server when taken, and until lease + period:
    assert _worst([held_at] * 50 + arrivals, PERIOD) <= LIMIT
    while_held = [t for t in arrivals if t < held_at + lease + PERIOD - 0.05]
    assert _worst(while_held, PERIOD) <= LIMIT - 50
    # ... and then they are back: later windows reach the full limit.
    after = [t for t in arrivals if t >= held_at + lease + PERIOD + 0.3]
    assert after, "no request after the dead holder's slots returned"
    assert min(after) <= held_at + lease + PERIOD + 1.0


async def test_redis_restarted_mid_run_never_lets_a_window_over_the_limit(redis_server):
    """Redis loses everything mid-run: the processes pause one period instead of starting an empty window."""
    async with run_emulator(EmulatorConfig(time_scale=SCALE)) as running:
        workers = [
            await _start(*_calls(running.base_url, redis_server.url, retries=20)) for _ in range(4)
        ]
        for worker in workers:
            await worker.go()
        with anyio.fail_after(30):
            while len(running.emulator.log) < 150:  # noqa: ASYNC110 - the server's log has no event
                await anyio.sleep(0.01)
        redis_server.restart()
        restarted = anyio.current_time()
        results = [await worker.finish() for worker in workers]
        arrivals = _arrivals(running.emulator)
    assert [status for status, _, _ in results] == [0, 0, 0, 0], [err for _, _, err in results]
    assert len(arrivals) == 400
    assert _worst(arrivals, PERIOD) <= LIMIT
    later = sorted(t for t in arrivals if t > restarted + 0.2)
    gaps = [b - a for a, b in zip([restarted, *later], later, strict=False)]
    assert max(gaps) >= 0.9 * PERIOD, "no pause of one period after the store was lost"


async def test_redis_stopped_every_process_fails_with_a_clear_error_and_sends_nothing(
    redis_server,
):
    """With Redis down, each process stops with LimiterUnavailableError naming the key; no request leaves."""
    async with run_emulator(EmulatorConfig(time_scale=SCALE)) as running:
        redis_server.stop()
        workers = [await _start(*_calls(running.base_url, redis_server.url)) for _ in range(2)]
        for worker in workers:
            await worker.go()
        results = [await worker.finish() for worker in workers]
        assert running.emulator.log == []
    for status, _, err in results:
        assert status == 3
        assert "LimiterUnavailableError" in err
        assert f"key {KEY!r}" in err
        assert "cannot reach Redis" in err


async def test_recuro_restore_with_redis_url_counts_every_request_in_the_shared_window(
    redis_server, tmp_path
):
    """`recuro restore --redis-url URL` runs its batch through the shared budget: each API request the server saw holds a stamp in Redis."""
    import redis

    inputs = make_samples(tmp_path / "in", 2, 5)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECURO_")}
    async with run_emulator(EmulatorConfig(time_scale=SCALE)) as running:
        command = [
            sys.executable,
            "-m",
            "orchestrator.cli.recuro",
            "restore",
            *map(str, inputs),
            "--format",
            "Mp4Hevc",
            "--out",
            str(tmp_path / "out"),
            "--base-url",
            running.base_url,
            "--time-scale",
            str(SCALE),
            "--redis-url",
            redis_server.url,
        ]
        env |= {"RECURO_API_KEY": running.api_key, "RECURO_API_SECRET": running.api_secret}
        result = await anyio.run_process(command, env=env, check=False)
        api = [e for e in running.emulator.log if e.action != "download"]
        key = running.api_key
    assert result.returncode == 0, result.stderr.decode()
    assert len(list((tmp_path / "out").glob("*.mp4"))) == 2
    with redis.Redis(unix_socket_path=str(redis_server.socket)) as probe:
        stamps = probe.zcard("{" + f"recuro:{key}" + "}:done")
    # stamps older than one window (3 s) are gone; what is left are this batch's last requests
    assert 0 < stamps <= len(api)
