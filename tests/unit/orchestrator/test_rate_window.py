"""The rate window kept in the journal: a kill and a rerun never put more than the limit in any window."""

from __future__ import annotations

import random

import anyio
import pytest
from fakeclock import FakeClock

from _clientkit._limiter import SlidingWindowLimiter, slot
from orchestrator._budget import JournaledWindow

EPOCH = 1_800_000_000.0
LIMIT, PERIOD = 20, 60.0


def _worst_window(times: list[float], period: float) -> int:
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - period:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("seed", range(20))
async def test_a_rerun_right_after_a_kill_stays_inside_the_window(seed):
    """Killed at a random moment (slots in flight, admissions since the last snapshot), the rerun seeded
    from the journal keeps every window of both runs, as the server counts them, within the limit."""
    rng = random.Random(seed)
    journal: dict[str, object] = {}

    async def save(snapshot: dict[str, object]) -> None:
        journal["rate_window"] = snapshot

    clock_a = FakeClock()
    wall_a = lambda: EPOCH + clock_a.monotonic()  # noqa: E731
    first = JournaledWindow(
        SlidingWindowLimiter(LIMIT, PERIOD, clock=clock_a, wall_clock=wall_a), wall_clock=wall_a
    )
    first.bind(save)
    seen: list[float] = []  # the latest moment the server may have counted each request
    in_flight = 0
    for _ in range(rng.randrange(LIMIT, 3 * LIMIT)):
        await clock_a.advance(rng.uniform(0.0, 2.0))
        with anyio.fail_after(1):
            async with clock_a.autoadvance():
                ticket = await first.acquire()
        if rng.random() < 0.15:
            in_flight += 1  # never answered: the kill comes first
            continue
        await clock_a.advance(rng.uniform(0.0, 1.0))
        seen.append(wall_a())
        await first.release(ticket)
    await clock_a.advance(rng.uniform(0.0, 5.0))
    killed_at = wall_a()
    seen += [killed_at] * in_flight

    restart = killed_at + rng.uniform(0.5, 3.0)
    clock_b = FakeClock(start=500.0)
    wall_b = lambda: restart + clock_b.monotonic() - 500.0  # noqa: E731
    second = JournaledWindow(
        SlidingWindowLimiter(LIMIT, PERIOD, clock=clock_b, wall_clock=wall_b), wall_clock=wall_b
    )
    second.restore(journal["rate_window"])  # type: ignore[arg-type]

    async def request() -> None:
        async with slot(second):
            seen.append(wall_b())

    async with clock_b.autoadvance(), anyio.create_task_group() as tg:
        for _ in range(2 * LIMIT):
            tg.start_soon(request)
    assert _worst_window(seen, PERIOD) <= LIMIT


async def test_a_snapshot_is_saved_before_each_block_of_reserved_admissions():
    """The journal is written before the first admission and again after every `reserve` of them."""
    clock = FakeClock()
    saved: list[dict[str, object]] = []

    async def save(snapshot: dict[str, object]) -> None:
        saved.append(snapshot)

    window = JournaledWindow(SlidingWindowLimiter(100, 60.0, clock=clock), reserve=4)
    window.bind(save)
    tickets = [await window.acquire() for _ in range(9)]
    assert len(saved) == 3  # before admissions 1, 5 and 9
    assert saved[0] == {"stamps": [], "phantoms": 4}
    assert saved[2]["phantoms"] == 8 + 4, "slots in flight are phantoms, not 'now' stamps"
    for ticket in tickets:
        await window.release(ticket)
    await window.save_final()
    assert saved[-1]["phantoms"] == 0
    assert len(saved[-1]["stamps"]) == 9  # type: ignore[arg-type]


async def test_requests_waiting_for_a_full_window_are_covered_by_the_next_snapshot():
    """Requests that passed the snapshot's count but still wait for room in a full window are admitted
    after the next snapshot: it must count them (the random kills saw 31 requests in a window of 30 when
    a kill followed such admissions). Deterministic: a full window, six waiters, a kill once all six are
    admitted and on the wire."""
    clock = FakeClock()
    saved: list[dict[str, object]] = []

    async def save(snapshot: dict[str, object]) -> None:
        saved.append(snapshot)

    window = JournaledWindow(SlidingWindowLimiter(30, 60.0, clock=clock), reserve=3)
    window.bind(save)
    for _ in range(30):
        await window.release(await window.acquire())
    admitted: list[object] = []

    async def request() -> None:
        admitted.append(await window.acquire())  # never released: the kill comes first

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(request)
        await anyio.wait_all_tasks_blocked()
        assert admitted == []  # the window is full: all six wait for room
        async with clock.autoadvance():
            while len(admitted) < 6:
                await clock.sleep(1.0)
    last = saved[-1]
    covered = int(last["phantoms"])  # type: ignore[call-overload]
    assert covered >= 6, f"6 requests on the wire at the kill, the journal covers {covered}: {last}"
