"""The sliding-window limiter: admission, pauses, cancellation, abandoned slots, `slot()`, throughput."""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
from collections.abc import Awaitable, Callable

import anyio
import pytest
from aiolimiter import AsyncLimiter
from fakeclock import FakeClock, LoopClock, run_virtual

from _clientkit._limiter import Limiter, PersistentWindow, SlidingWindowLimiter, Ticket, slot

Admitted = list[tuple[str, float]]


async def _take(limiter: Limiter, clock: FakeClock, name: str, admitted: Admitted) -> None:
    await limiter.acquire()
    admitted.append((name, clock.monotonic()))


async def _take_unless_cancelled(
    limiter: Limiter, clock: FakeClock, name: str, admitted: Admitted, scope: anyio.CancelScope
) -> None:
    with scope:
        await _take(limiter, clock, name, admitted)


def _worst_window(times: list[float], period: float) -> int:
    """The most events in any half-open window [t, t + period)."""
    ordered = sorted(times)
    return max(bisect.bisect_left(ordered, t + period) - i for i, t in enumerate(ordered))


# ---------------------------------------------------------------- admission


async def test_admits_max_requests_at_once_then_waits():
    """The first `max_requests` acquires return at once and the next one waits."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, 10.0, clock=clock)
    tickets = [await limiter.acquire() for _ in range(3)]
    admitted: Admitted = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_take, limiter, clock, "fourth", admitted)
        await clock.advance(1000.0)
        assert admitted == []
        tg.cancel_scope.cancel()
    assert tickets == [Ticket(0), Ticket(1), Ticket(2)]


async def test_in_flight_request_holds_its_slot_until_release_plus_period():
    """A slot stays taken while its request is in flight and for `period` after its release stamp."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock)
    ticket = await limiter.acquire()
    admitted: Admitted = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_take, limiter, clock, "next", admitted)
        await clock.advance(100.0)
        await limiter.release(ticket)
        await clock.advance_to(109.999)
        assert admitted == []
        await clock.advance_to(110.0)
        assert admitted == [("next", 110.0)]


async def test_waiters_are_admitted_first_come_first_served():
    """Waiters queued behind a full window are admitted in the order they called `acquire`."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, 5.0, clock=clock)
    for _ in range(2):
        await limiter.release(await limiter.acquire())
    admitted: Admitted = []

    async def request(name: str) -> None:
        ticket = await limiter.acquire()
        admitted.append((name, clock.monotonic()))
        await limiter.release(ticket)

    async with clock.autoadvance(), anyio.create_task_group() as tg:
        for name in "abcde":
            tg.start_soon(request, name)  # they call acquire() in this order
    assert admitted == [("a", 5.0), ("b", 5.0), ("c", 10.0), ("d", 10.0), ("e", 15.0)]


async def test_a_newcomer_does_not_jump_the_queue():
    """A request arriving at the instant a queued waiter becomes admissible queues behind it."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, 5.0, clock=clock)
    for _ in range(2):
        await limiter.release(await limiter.acquire())  # the window is full until 5.0
    admitted: Admitted = []

    async def newcomer() -> None:
        await clock.sleep(5.0)  # wakes at 5.0 just before the queued waiter's own wake-up
        await _take(limiter, clock, "newcomer", admitted)

    async with clock.autoadvance(), anyio.create_task_group() as tg:
        tg.start_soon(newcomer)
        await clock.settle()
        tg.start_soon(_take, limiter, clock, "queued", admitted)
    assert admitted == [("queued", 5.0), ("newcomer", 5.0)]


async def test_release_of_a_ticket_not_in_flight_is_refused():
    """Releasing a ticket twice raises ValueError instead of corrupting the window."""
    limiter = SlidingWindowLimiter(2, 1.0, clock=FakeClock())
    ticket = await limiter.acquire()
    await limiter.release(ticket)
    with pytest.raises(ValueError, match="not in flight"):
        await limiter.release(ticket)


def test_satisfies_the_limiter_protocol():
    """`SlidingWindowLimiter` is usable wherever a `Limiter` is expected."""
    limiter: Limiter = SlidingWindowLimiter(1, 1.0)
    assert callable(limiter.acquire)
    assert callable(limiter.release)
    assert callable(limiter.pause)


async def test_repr_shows_limits_and_slots_in_use_only():
    """The repr shows max_requests, period and the live slot count, and nothing else."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(200, 60.0, clock=clock, grace=5.0)
    await limiter.acquire()
    assert repr(limiter) == "SlidingWindowLimiter(max_requests=200, period=60.0, in_use=1)"


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_requests": 0, "period": 1.0}, "max_requests"),
        ({"max_requests": -3, "period": 1.0}, "max_requests"),
        ({"max_requests": 2.0, "period": 1.0}, "max_requests"),
        ({"max_requests": True, "period": 1.0}, "max_requests"),
        ({"max_requests": 1, "period": 0}, "period"),
        ({"max_requests": 1, "period": -1.0}, "period"),
        ({"max_requests": 1, "period": float("nan")}, "period"),
        ({"max_requests": 1, "period": float("inf")}, "period"),
        ({"max_requests": 1, "period": "60"}, "period"),
        ({"max_requests": 1, "period": 1.0, "grace": -0.5}, "grace"),
        ({"max_requests": 1, "period": 1.0, "grace": float("nan")}, "grace"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_the_field(kwargs, field):
    """A bad max_requests, period or grace raises ValueError whose message starts with the field name."""
    with pytest.raises(ValueError, match=f"^{field} must be"):
        SlidingWindowLimiter(**kwargs)


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
async def test_invalid_pause_raises_value_error_naming_the_field(seconds):
    """A negative, NaN or infinite pause raises ValueError naming `seconds`."""
    limiter = SlidingWindowLimiter(1, 1.0, clock=FakeClock())
    with pytest.raises(ValueError, match=r"^seconds must be"):
        await limiter.pause(seconds)


# ---------------------------------------------------------------- pause


async def test_pause_blocks_admissions_until_it_ends_then_admits_one_probe():
    """After `pause(30)` nothing is admitted until 30 s later, even with free slots; then one probe."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 10.0, clock=clock)
    await limiter.pause(30.0)
    admitted: Admitted = []

    async def request(name: str) -> None:
        ticket = await limiter.acquire()
        admitted.append((name, clock.monotonic()))
        await clock.sleep(1.0)
        await limiter.release(ticket)

    async with anyio.create_task_group() as tg:
        tg.start_soon(request, "a")
        tg.start_soon(request, "b")
        await clock.advance_to(29.999)
        assert admitted == []
        await clock.advance_to(30.0)
        assert admitted == [("a", 30.0)]
        await clock.advance_to(31.0)
        assert admitted == [("a", 30.0), ("b", 31.0)]
        await clock.advance_to(32.0)


async def test_a_longer_pause_extends_the_current_one():
    """A pause that ends later than the current one moves the end of the pause out."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 10.0, clock=clock)
    await limiter.pause(10.0)
    await clock.advance(5.0)
    await limiter.pause(20.0)  # ends at 25
    admitted: Admitted = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_take, limiter, clock, "a", admitted)
        await clock.advance_to(24.999)
        assert admitted == []
        await clock.advance_to(25.0)
        assert admitted == [("a", 25.0)]


async def test_a_shorter_pause_never_shortens_the_current_one():
    """A pause that would end sooner than the current one leaves the current end unchanged."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 10.0, clock=clock)
    await limiter.pause(30.0)
    await clock.advance(10.0)
    await limiter.pause(5.0)  # would end at 15
    admitted: Admitted = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_take, limiter, clock, "a", admitted)
        await clock.advance_to(29.999)
        assert admitted == []
        await clock.advance_to(30.0)
        assert admitted == [("a", 30.0)]


async def test_pause_also_holds_a_waiter_already_queued():
    """A pause issued while a waiter is queued for a slot delays it past the slot's expiry."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock)
    await limiter.release(await limiter.acquire())
    admitted: Admitted = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_take, limiter, clock, "a", admitted)
        await clock.advance_to(5.0)
        await limiter.pause(20.0)
        await clock.advance_to(24.999)
        assert admitted == []
        await clock.advance_to(25.0)
        assert admitted == [("a", 25.0)]


# ---------------------------------------------------------------- after a refusal: one probe per pause


async def test_after_a_refusal_one_probe_goes_out_and_a_clean_answer_reopens_admission():
    """A refusal closes the window: when the pause ends one probe is admitted, never a burst; a refused probe pauses again; a clean one reopens admission for everyone."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(200, 60.0, clock=clock)
    refused = await limiter.acquire()
    await limiter.pause(10.0)  # the service refused `refused`: the transport pauses, then releases
    await limiter.release(refused)
    admitted: Admitted = []

    async def request(name: str) -> None:
        ticket = await limiter.acquire()
        admitted.append((name, clock.monotonic()))
        await clock.sleep(0.5)
        if name == "r0":  # the first probe is refused too
            await limiter.pause(10.0)
        await limiter.release(ticket)

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(request, f"r{i}")
        await clock.advance_to(10.0)
        assert admitted == [("r0", 10.0)]  # the probe, and only it
        await clock.advance_to(20.999)
        assert admitted == [("r0", 10.0), ("r1", 20.5)]  # refused at 10.5: one more probe at 20.5
        await clock.advance_to(21.0)
        assert len(admitted) == 20  # the second probe came back clean: the rest go at once
        assert {t for _, t in admitted[2:]} == {21.0}
        await clock.advance(1.0)
    assert not limiter.probing


async def test_an_abandoned_probe_lets_the_next_probe_go_but_does_not_reopen():
    """A probe that got no answer (abandoned) is no evidence: the next request goes alone as a new probe."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(200, 60.0, clock=clock)
    await limiter.pause(0.0)
    probe = await limiter.acquire()
    waiting = asyncio.create_task(limiter.acquire())
    await clock.settle()
    assert not waiting.done()
    await limiter.release(probe, abandoned=True)
    await clock.settle()
    second = waiting.result()
    assert limiter.probing
    third = asyncio.create_task(limiter.acquire())
    await clock.settle()
    assert not third.done()
    await limiter.release(second)
    await clock.settle()
    assert third.done()
    assert not limiter.probing


# ---------------------------------------------------------------- cancellation


async def test_cancelling_the_head_waiter_lets_the_next_one_proceed():
    """When the first waiter is cancelled, the one behind it gets the slot as soon as it frees."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock)
    await limiter.release(await limiter.acquire())
    admitted: Admitted = []
    head = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_take_unless_cancelled, limiter, clock, "head", admitted, head)
        await clock.settle()
        tg.start_soon(_take, limiter, clock, "next", admitted)
        await clock.advance_to(3.0)
        head.cancel()
        await clock.advance_to(10.0)
        assert admitted == [("next", 10.0)]
    assert head.cancelled_caught


async def test_cancelling_the_head_while_all_slots_are_in_flight_does_not_block_the_next():
    """A head waiter cancelled while waiting for a release leaves the queue to the next waiter."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock)
    ticket = await limiter.acquire()
    admitted: Admitted = []
    head = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_take_unless_cancelled, limiter, clock, "head", admitted, head)
        await clock.settle()
        tg.start_soon(_take, limiter, clock, "next", admitted)
        await clock.settle()
        head.cancel()
        await clock.advance_to(2.0)
        await limiter.release(ticket)
        await clock.advance_to(12.0)
        assert admitted == [("next", 12.0)]


async def test_cancelled_waiter_takes_no_slot():
    """A waiter cancelled before admission leaves the live-slot count unchanged."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, 10.0, clock=clock)
    await limiter.pause(5.0)
    admitted: Admitted = []
    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_take_unless_cancelled, limiter, clock, "cancelled", admitted, scope)
        await clock.advance_to(1.0)
        scope.cancel()
        await clock.advance_to(10.0)
    assert admitted == []
    assert limiter.in_use == 0
    first = await limiter.acquire()  # the probe after the pause
    await limiter.release(first)
    second = await limiter.acquire()
    assert (first, second) == (Ticket(0), Ticket(1))


async def test_cancelling_a_middle_waiter_keeps_the_others_in_order():
    """Cancelling a waiter in the middle of the queue does not disturb the order of the rest."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, 10.0, clock=clock)
    for _ in range(2):
        await limiter.release(await limiter.acquire())
    admitted: Admitted = []
    middle = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_take, limiter, clock, "a", admitted)
        tg.start_soon(_take_unless_cancelled, limiter, clock, "b", admitted, middle)
        tg.start_soon(_take, limiter, clock, "c", admitted)
        await clock.advance_to(5.0)
        middle.cancel()
        await clock.advance_to(10.0)
    assert admitted == [("a", 10.0), ("c", 10.0)]
    assert middle.cancelled_caught


async def test_native_asyncio_cancellation_of_a_waiter_frees_its_place():
    """`Task.cancel()` on a waiting `acquire` (as `asyncio.timeout` does) also leaves the queue cleanly."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock)
    ticket = await limiter.acquire()
    head = asyncio.create_task(limiter.acquire())
    following = asyncio.create_task(limiter.acquire())
    await clock.settle()
    await limiter.release(ticket)  # wakes the head in the same step as it is cancelled
    head.cancel()
    await clock.advance_to(10.0)
    assert head.cancelled()
    assert following.result() == Ticket(1)
    assert limiter.in_use == 1


# ---------------------------------------------------------------- abandoned slots and slot()


async def test_abandoned_release_keeps_the_slot_live_for_grace_before_the_period():
    """`release(abandoned=True)` keeps the slot live for `grace` + `period` after the stamp."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock, grace=4.0)
    ticket = await limiter.acquire()
    await clock.advance(1.0)
    await limiter.release(ticket, abandoned=True)
    admitted: Admitted = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_take, limiter, clock, "next", admitted)
        await clock.advance_to(14.999)
        assert admitted == []
        await clock.advance_to(15.0)
        assert admitted == [("next", 15.0)]


async def test_slot_releases_stamped_at_exit_when_the_body_succeeds():
    """`slot()` releases its ticket when the body ends, stamped with that time and without grace."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock, grace=4.0)
    async with slot(limiter) as ticket:
        assert ticket == Ticket(0)
        await clock.advance(2.0)
    assert limiter.in_use == 1
    await clock.advance_to(11.999)
    assert limiter.in_use == 1
    await clock.advance_to(12.0)
    assert limiter.in_use == 0


async def test_slot_releases_as_abandoned_when_the_body_raises():
    """`slot()` releases its ticket when the body raises, keeping it live for grace + period."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock, grace=4.0)

    async def failing_request() -> None:
        async with slot(limiter):
            await clock.advance(2.0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await failing_request()
    await clock.advance_to(15.999)
    assert limiter.in_use == 1
    await clock.advance_to(16.0)
    assert limiter.in_use == 0


async def test_slot_releases_as_abandoned_when_the_body_is_cancelled():
    """A request cancelled inside `slot()` still stamps its slot, as abandoned, despite the cancellation."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock, grace=4.0)
    entered = anyio.Event()

    async def request() -> None:
        async with slot(limiter):
            entered.set()
            await clock.sleep(100.0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(request)
        await entered.wait()
        await clock.advance(3.0)
        tg.cancel_scope.cancel()
    assert clock.sleepers == 0
    await clock.advance_to(3.0 + 4.0 + 9.999)
    assert limiter.in_use == 1
    await clock.advance_to(3.0 + 4.0 + 10.0)
    assert limiter.in_use == 0


async def test_slot_cancelled_while_waiting_takes_and_releases_nothing():
    """Cancelling a request still waiting in `slot()` neither takes nor releases a slot."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock)
    holder = await limiter.acquire()
    with anyio.CancelScope() as scope:
        scope.cancel()
        async with slot(limiter):
            pytest.fail("a cancelled waiter must not enter the body")
    assert limiter.in_use == 1
    await limiter.release(holder)


# ---------------------------------------------------------------- logging


async def test_logs_at_debug_when_waiting_and_when_paused(caplog):
    """Waiting and pausing each log one DEBUG record with a constant message and extra fields."""
    caplog.set_level(logging.DEBUG, logger="_clientkit")
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock=clock)
    await limiter.pause(5.0)
    async with clock.autoadvance():
        await limiter.acquire()
    records = [r for r in caplog.records if r.name == "_clientkit"]
    assert [r.getMessage() for r in records] == [
        "rate limiter: paused",
        "rate limiter: waiting for a slot",
        "rate limiter: probe admitted after a pause",
    ]
    assert all(r.levelno == logging.DEBUG for r in records)
    assert records[0].limiter_pause_seconds == 5.0
    assert records[1].limiter_queue == 1
    assert records[1].limiter_paused_for == 5.0


# ---------------------------------------------------------------- throughput under backlog


async def _backlog_utilisation(latency: Callable[[], float], *, periods: int = 10) -> float:
    """Run a backlog through `SlidingWindowLimiter(200, 60)`; return the rate achieved / the limit."""
    max_requests, period = 200, 60.0
    clock = FakeClock()
    limiter = SlidingWindowLimiter(max_requests, period, clock=clock)
    admitted: list[float] = []
    target = periods * max_requests + 1

    async def worker() -> None:
        while len(admitted) < target:
            async with slot(limiter):
                admitted.append(clock.monotonic())
                await clock.sleep(latency())

    async with clock.autoadvance(), anyio.create_task_group() as tg:
        for _ in range(2 * max_requests):
            tg.start_soon(worker)
    # `periods * max_requests` admissions after the very first one took this long:
    elapsed = admitted[periods * max_requests] - admitted[0]
    return (periods * max_requests / elapsed) / (max_requests / period)


@pytest.mark.parametrize(
    ("low", "high"),
    [(0.0, 0.0), (0.1, 0.1), (0.0, 0.3)],
    ids=["instant responses", "100 ms latency", "0-300 ms jittered latency"],
)
async def test_sustains_at_least_99_percent_of_the_limit_under_backlog(low, high):
    """With far more requests than the limit, ten periods admit at least 99 % of the allowed rate."""
    rng = random.Random(7)
    utilisation = await _backlog_utilisation(lambda: rng.uniform(low, high))
    assert utilisation >= 0.99, f"latency {low}-{high} s: sustained {utilisation:.4%} of the limit"


# ---------------------------------------------------------------- aiolimiter alone is not enough


async def _burst_through(
    acquire_release: Callable[[], Awaitable[object]], count: int
) -> list[float]:
    """Start `count` requests at once on the running (virtual) loop; return their admission times."""
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await acquire_release()
        times.append(loop.time())

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)
    return times


def test_aiolimiter_alone_lets_399_requests_into_one_60_second_window():
    """`aiolimiter.AsyncLimiter(200, 60)` used naively admits far more than 200 in a 60 s window."""

    async def main() -> list[float]:
        limiter = AsyncLimiter(200, 60)
        return await _burst_through(limiter.acquire, 1200)

    times = run_virtual(main)
    raw = _worst_window(times, 60.0)
    # Its drip lands every 0.3 s; float drift puts the 200th drip at 59.9999999999998 instead of 60.0.
    # A server stamps arrivals at finite resolution, so count windows on microsecond-rounded times.
    rounded = _worst_window([round(t, 6) for t in times], 60.0)
    message = f"aiolimiter worst half-open 60 s window: {rounded} (raw floats: {raw}); limit 200"
    assert rounded > 200, message
    assert rounded == 399, message


def test_sliding_window_limiter_keeps_the_same_burst_within_the_limit():
    """On the same virtual loop and burst, `SlidingWindowLimiter(200, 60)` never exceeds 200 per window."""

    async def main() -> list[float]:
        limiter = SlidingWindowLimiter(200, 60.0, clock=LoopClock())

        async def acquire_release() -> None:
            await limiter.release(await limiter.acquire())

        return await _burst_through(acquire_release, 1200)

    times = run_virtual(main)
    assert len(times) == 1200
    assert _worst_window(times, 60.0) == 200
    assert max(times) == 5 * 60.0


# ---------------------------------------------------------------- the fake clock these tests rely on


async def test_fake_clock_wakes_sleepers_in_deadline_order():
    """`FakeClock.advance` wakes sleepers in deadline order, at their deadlines, then ties by arrival."""
    clock = FakeClock()
    woke: Admitted = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async with anyio.create_task_group() as tg:
        for name, seconds in [("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0)]:
            tg.start_soon(sleeper, name, seconds)
        await clock.advance(2.5)
        assert woke == [("a", 1.0), ("b1", 2.0), ("b2", 2.0)]
        assert clock.monotonic() == 2.5
        await clock.advance(10.0)
    assert woke[-1] == ("c", 3.0)
    assert clock.slept == [3.0, 1.0, 2.0, 2.0]


async def test_fake_clock_autoadvance_jumps_to_deadlines_and_drops_cancelled_sleepers():
    """Inside `autoadvance()` time jumps to each deadline, and a cancelled sleeper is forgotten."""
    clock = FakeClock()
    async with clock.autoadvance():
        with anyio.CancelScope() as scope:
            scope.cancel()
            await clock.sleep(50.0)
        await clock.sleep(7.0)
    assert clock.monotonic() == 7.0
    assert clock.sleepers == 0


# ---------------------------------------------------------------- persisting the window (PersistentWindow)


async def test_a_limiter_seeded_with_a_killed_runs_stamps_admits_nothing_until_they_age_out():
    """200 stamps saved just before a kill (three of them in flight) keep a restarted limiter closed until each is `period` old, so no wall-clock window over both runs holds more than 200."""
    epoch = 1_800_000_000.0
    clock_a = FakeClock()
    before = SlidingWindowLimiter(
        200, 60.0, clock=clock_a, wall_clock=lambda: epoch + clock_a.monotonic()
    )
    # wall-clock times: the latest the server may have seen each request of the first run
    server_sees: list[float] = []
    in_flight = []
    for i in range(200):
        await clock_a.advance_to(i * 0.25)
        ticket = await before.acquire()
        if i >= 197:
            in_flight.append(ticket)  # killed before its response came
            server_sees.append(epoch + 55.0)
        else:
            await clock_a.advance(0.1)
            server_sees.append(epoch + clock_a.monotonic())
            await before.release(ticket)
    await clock_a.advance_to(55.0)
    saved = before.stamps()  # the last snapshot before the kill
    assert len(saved) == 200
    assert saved == sorted(saved)
    assert saved[-3:] == [epoch + 55.0] * 3

    # another process: another monotonic origin, started 2 s after the kill
    clock_b = FakeClock(start=1000.0)
    after = SlidingWindowLimiter(
        200, 60.0, clock=clock_b, wall_clock=lambda: epoch + 57.0 + clock_b.monotonic() - 1000.0
    )
    after.seed(saved)
    assert after.in_use == 200
    admitted: list[float] = []

    async def request() -> None:
        async with slot(after):
            admitted.append(epoch + 57.0 + clock_b.monotonic() - 1000.0)

    async with clock_b.autoadvance(), anyio.create_task_group() as tg:
        for _ in range(250):
            tg.start_soon(request)
    assert len(admitted) == 250
    assert min(admitted) == pytest.approx(saved[0] + 60.0)
    assert _worst_window(server_sees + admitted, 60.0) <= 200


async def test_seed_drops_stamps_a_period_old_and_clamps_future_ones_to_grace():
    """Stamps `period` old are not loaded; a stamp from the future counts as stamped `grace` from now."""
    clock = FakeClock(start=50.0)
    limiter = SlidingWindowLimiter(
        5, 10.0, clock=clock, grace=2.0, wall_clock=lambda: 100.0 + clock.monotonic()
    )
    limiter.seed([140.0, 145.0, 500.0])  # now is 150 on the wall: 10 s old, 5 s old, far future
    assert limiter.in_use == 2
    assert limiter.stamps() == [145.0, 152.0]
    await clock.advance(4.999)
    assert limiter.in_use == 2
    await clock.advance(0.001)
    assert limiter.in_use == 1
    await clock.advance(7.0)
    assert limiter.in_use == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1.0", None])
def test_seed_refuses_a_stamp_that_is_not_a_finite_number(bad):
    """A corrupt saved stamp raises ValueError naming `stamps` instead of opening the window."""
    limiter = SlidingWindowLimiter(5, 10.0, clock=FakeClock())
    with pytest.raises(ValueError, match=r"^stamps must be"):
        limiter.seed([1.0, bad])


def test_the_sliding_window_limiter_is_a_persistent_window():
    """The orchestrator recognises a limiter it can save and restore by the `PersistentWindow` protocol."""
    assert isinstance(SlidingWindowLimiter(1, 1.0), PersistentWindow)
