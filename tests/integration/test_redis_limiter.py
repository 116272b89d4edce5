"""`RedisLimiter` against a real redis-server (unix socket, persistence off), several limiters = processes.

Each `RedisLimiter` instance here stands for one process: it has its own local queue and its own view of
the store, exactly as a separate process would. Periods are short (0.3-1 s) and real.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
import redis
from fakeclock import FakeClock
from redisserver import RedisServer

from _clientkit._limiter import Pacing, slot
from _clientkit._redis_limiter import LimiterUnavailableError, RedisLimiter

pytestmark = pytest.mark.slow


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


def _limiter(server: RedisServer, **kwargs: object) -> RedisLimiter:
    options: dict[str, object] = {
        "key": "test:acct",
        "max_requests": 10,
        "period": 0.5,
        "pacing": "off",
        "cold_start_pause": False,
        "poll": 0.01,
        "lease": 5.0,
        "grace": 0.0,
    }
    options.update(kwargs)
    return RedisLimiter.from_url(server.url, **options)  # type: ignore[arg-type]


@pytest.fixture
async def processes(redis_server: RedisServer) -> AsyncIterator[list[RedisLimiter]]:
    limiters = [_limiter(redis_server) for _ in range(4)]
    try:
        yield limiters
    finally:
        for limiter in limiters:
            await limiter.aclose()


async def test_four_processes_share_one_window_and_sustain_the_limit(processes):
    """Four limiters on one key: no window of `period` holds more than `max_requests` admissions-to-releases, and the backlog goes out at close to the limit."""
    admitted: list[float] = []
    released: list[float] = []

    async def request(limiter: RedisLimiter) -> None:
        async with slot(limiter):
            admitted.append(anyio.current_time())
            await anyio.sleep(0.002)
            released.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        for limiter in processes:
            for _ in range(15):
                tg.start_soon(request, limiter)
    assert len(admitted) == 60
    # The server may see each request anywhere in [admission, release]: both ends must be bounded.
    assert _worst(admitted, 0.5) <= 10
    assert _worst(released, 0.5) <= 10
    elapsed = max(admitted) - min(admitted)
    assert elapsed < 5 * 0.5 + 1.0  # 60 at 10 per 0.5 s: five periods after the first ten


async def test_waiters_across_processes_are_served_in_ticket_order(redis_server):
    """With the window full and slots freeing one at a time, heads of four processes queued one after the other are admitted in that order."""
    period = 2.5  # room to queue all four before the first slot frees, even on a loaded machine
    processes = [_limiter(redis_server, period=period) for _ in range(4)]
    first = processes[0]
    for _ in range(10):
        await first.release(await first.acquire())
        await anyio.sleep(0.15)  # so that the stamps expire one by one, 0.15 s apart
    order: list[int] = []

    async def take(i: int) -> None:
        ticket = await processes[i].acquire()
        order.append(i)
        await processes[i].release(ticket)

    queue = "{test:acct}:queue"
    async with anyio.create_task_group() as tg:
        for queued, i in enumerate((3, 1, 2, 0), start=1):
            tg.start_soon(take, i)
            # wait until it holds its ticket (Redis state: no event to await) before the next asks
            while await first._redis.zcard(queue) < queued:
                assert not order, "a slot freed before all four were queued"
                await anyio.sleep(0.001)
    assert order == [3, 1, 2, 0]
    for limiter in processes:
        await limiter.aclose()


async def test_a_cancelled_waiter_leaves_the_queue_at_once(processes):
    """A waiter cancelled while queued in Redis gives its place up: the one behind it is not held back."""
    a, b = processes[0], processes[1]
    for _ in range(10):
        await a.release(await a.acquire())
    with anyio.move_on_after(0.1):
        await a.acquire()  # queued first, then cancelled
    began = anyio.current_time()
    ticket = await b.acquire()
    await b.release(ticket)
    assert anyio.current_time() - began < 0.5 + 0.2


async def test_a_refusal_pauses_every_process_then_one_probe_goes_out(processes):
    """`pause` in one process holds all four; when it ends, a single probe goes out, and the rest follow only once it returned clean."""
    a = processes[0]
    await a.pause(0.3)
    paused_at = anyio.current_time()
    admitted: list[tuple[int, float]] = []
    probe_back = anyio.Event()

    async def request(i: int) -> None:
        ticket = await processes[i].acquire()
        admitted.append((i, anyio.current_time()))
        if len(admitted) == 1:
            await anyio.sleep(0.2)  # the probe is slow: nobody else may go meanwhile
            probe_back.set()
        await processes[i].release(ticket)

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(request, i)
    times = sorted(t for _, t in admitted)
    assert times[0] >= paused_at + 0.3 - 0.01
    assert times[1] >= times[0] + 0.2  # only after the probe came back


async def test_an_expired_lease_becomes_a_stamp_at_its_deadline(redis_server):
    """A slot whose holder never releases it counts until lease + period, then frees; it is never just deleted."""
    async with (
        _limiter(redis_server, lease=0.4) as dead,
        _limiter(redis_server, lease=0.4) as alive,
    ):
        for _ in range(10):
            await dead.acquire()  # the holder "dies": no release
        began = anyio.current_time()
        ticket = await alive.acquire()
        waited = anyio.current_time() - began
        await alive.release(ticket)
    assert 0.4 + 0.5 - 0.05 <= waited < 0.4 + 0.5 + 0.4


async def test_a_store_lost_mid_run_pauses_one_period_instead_of_opening_an_empty_window(
    redis_server, caplog
):
    """Redis restarted without persistence: a process that knew the store waits one period before admitting again, and says why."""
    caplog.set_level(logging.WARNING, logger="_clientkit")
    async with _limiter(redis_server) as limiter:
        for _ in range(10):
            await limiter.release(await limiter.acquire())
        redis_server.restart()
        began = anyio.current_time()
        await limiter.release(await limiter.acquire())
        waited = anyio.current_time() - began
    assert waited >= 0.5 - 0.02
    assert any("was empty" in r.getMessage() for r in caplog.records)


async def test_a_fresh_store_pauses_one_period_by_default(redis_server):
    """By default a process finding an empty store (first start, or a restart it cannot tell from one) waits one period."""
    async with _limiter(redis_server, cold_start_pause=True) as limiter:
        began = anyio.current_time()
        await limiter.release(await limiter.acquire())
        assert anyio.current_time() - began >= 0.5 - 0.02


async def test_redis_stopped_raises_a_clear_error_and_sends_nothing(redis_server):
    """With Redis down, `acquire` raises LimiterUnavailableError naming the key and the cure, not an unlimited pass."""
    limiter = _limiter(redis_server)
    redis_server.stop()
    with pytest.raises(
        LimiterUnavailableError, match=r"key 'test:acct'.*cannot reach Redis"
    ) as info:
        await limiter.acquire()
    assert "fallback_share" in str(info.value)
    await limiter.aclose()


async def test_redis_stopped_with_a_fallback_admits_a_local_share_only(redis_server):
    """With `fallback_share=0.3`, Redis down means an in-process limiter of 3 of the 10, never unlimited."""
    limiter = _limiter(redis_server, fallback_share=0.3)
    redis_server.stop()
    admitted: list[float] = []
    async with anyio.create_task_group() as tg:

        async def request() -> None:
            async with slot(limiter):
                admitted.append(anyio.current_time())

        for _ in range(7):
            tg.start_soon(request)
    assert limiter.falling_back
    assert _worst(admitted, 0.5) <= 3
    await limiter.aclose()


async def test_the_fallback_returns_to_redis_once_redis_answers_and_its_own_window_drained(
    redis_server,
):
    """After a period on the local share, a limiter whose Redis is back waits for its local slots to age out, then counts in Redis again."""
    clock = FakeClock()
    limiter = _limiter(redis_server, fallback_share=0.5, clock=clock)
    redis_server.stop()
    await limiter.release(await limiter.acquire())
    assert limiter.falling_back
    redis_server.start()
    await clock.advance(0.25)
    await limiter.release(await limiter.acquire())  # not a period yet: still local
    assert limiter.falling_back
    await clock.advance(0.3)  # a period after the fall-back; the slot taken at 0.25 is still live
    async with clock.autoadvance():
        ticket = await limiter.acquire()  # Redis answers; the local window drains first
    assert not limiter.falling_back
    assert clock.monotonic() >= 0.25 + 0.5
    await limiter.release(ticket)
    with redis.Redis(unix_socket_path=str(redis_server.socket)) as probe:
        assert probe.zcard("{test:acct}:done") == 1
    await limiter.aclose()


async def test_a_refused_probe_pauses_every_process_again(processes):
    """The probe's own refusal (pause before release) keeps the window closed: the next request is again a lone probe, after the new pause."""
    a, b = processes[0], processes[1]
    await a.pause(0.2)
    probe = await a.acquire()
    began = anyio.current_time()
    await a.pause(0.3)  # the probe was refused too
    await a.release(probe)
    second = await b.acquire()  # the next probe, after the second pause
    assert anyio.current_time() - began >= 0.3 - 0.02
    with anyio.move_on_after(0.2) as held:
        await a.acquire()  # nobody else while the second probe flies
    assert held.cancelled_caught
    await b.release(second)
    await a.release(await a.acquire())  # answered clean: open again


async def test_account_wide_pacing_spreads_admissions_of_all_processes(processes, redis_server):
    """The bucket lives in Redis: four processes together get burst + rate per second, not four times it."""
    async with (
        _limiter(
            redis_server,
            key="paced",
            pacing=Pacing(rate=20.0, burst=2),
            max_requests=100,
            period=10.0,
        ) as a,
        _limiter(
            redis_server,
            key="paced",
            pacing=Pacing(rate=20.0, burst=2),
            max_requests=100,
            period=10.0,
        ) as b,
    ):
        admitted: list[float] = []

        async def request(limiter: RedisLimiter) -> None:
            async with slot(limiter):
                admitted.append(anyio.current_time())

        async with anyio.create_task_group() as tg:
            for _ in range(15):
                tg.start_soon(request, a)
                tg.start_soon(request, b)
    assert len(admitted) == 30
    assert _worst(admitted, 0.5) <= 2 + 20 * 0.5 + 1  # burst + rate x 0.5 s (+1: clock granularity)
    assert max(admitted) - min(admitted) >= (30 - 2) / 20.0 - 0.1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"key": ""}, "key"),
        ({"key": "a{b}"}, "key"),
        ({"max_requests": 0}, "max_requests"),
        ({"period": 0}, "period"),
        ({"lease": -1.0}, "lease"),
        ({"grace": float("nan")}, "grace"),
        ({"poll": 0}, "poll"),
        ({"pacing": "fast"}, "pacing"),
        ({"fallback_share": 1.5}, "fallback_share"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_the_field(redis_server, kwargs, field):
    """Bad arguments are refused before any request, naming the field and the allowed values."""
    with pytest.raises(ValueError, match=f"^{field} must be"):
        _limiter(redis_server, **kwargs)


def test_repr_hides_the_redis_password():
    """A URL's password never reaches a repr or a message."""
    limiter = RedisLimiter.from_url("redis://user:hunter2@localhost:6399/0", key="acct")
    assert "hunter2" not in repr(limiter)
    assert "***" in repr(limiter)


async def test_recuro_redis_url_in_the_environment_gives_a_client_the_shared_limiter(
    redis_server, monkeypatch
):
    """With RECURO_REDIS_URL set, a `RecuroClient` built without `limiter=` shares its account's budget in Redis under `recuro:<api key>`, and closes that connection itself."""
    from recuro_async import RateLimit, RecuroClient
    from recuro_async.testing import EmulatorConfig, run_emulator

    monkeypatch.setenv("RECURO_REDIS_URL", redis_server.url)
    monkeypatch.delenv("RECURO_REDIS_KEY", raising=False)
    async with run_emulator(EmulatorConfig()) as running:
        client = RecuroClient(
            running.api_key,
            running.api_secret,
            base_url=running.base_url,
            rate_limit=RateLimit(200, 0.5),  # a fresh store pauses one period: keep it short
        )
        async with client:
            assert isinstance(client.limiter, RedisLimiter)
            assert client.limiter.key == f"recuro:{running.api_key}"
            await client.list_media()
        assert len(running.emulator.log) == 1
    tag = "{" + f"recuro:{running.api_key}" + "}"
    with redis.Redis(unix_socket_path=str(redis_server.socket)) as probe:
        assert probe.exists(f"{tag}:state")
        assert probe.zcard(f"{tag}:done") == 1  # the call's stamp
