"""The upload byte budget on a fake clock: windows stamped at completion, FIFO waits, 420 pauses."""

from __future__ import annotations

import anyio
import pytest
from fakeclock import FakeClock

from mediacrush_async import ByteBudget, InvalidArgumentError
from mediacrush_async._budget import UploadBudget


def make(max_bytes: int | None = 1000, period: float = 100.0) -> tuple[UploadBudget, FakeClock]:
    clock = FakeClock()
    return UploadBudget(ByteBudget(max_bytes=max_bytes, period=period), clock), clock


async def test_reservations_under_the_limit_do_not_wait():
    """Uploads whose total stays below the limit go at once."""
    budget, clock = make()
    await budget.reserve(400)
    await budget.reserve(599)
    assert clock.monotonic() == 0.0
    assert clock.slept == []


async def test_reaching_the_limit_waits_for_the_window_stamped_at_completion():
    """The server refuses at total >= limit, so reaching it waits until `period` after the first upload finished."""
    budget, clock = make()
    await budget.reserve(500)
    await clock.advance(7.0)
    budget.settle()  # the first upload finished at t=7: the server's window ends by t=107
    await budget.reserve(400)
    async with clock.autoadvance():
        await budget.reserve(100)
    assert clock.monotonic() == 107.0


async def test_a_waiting_upload_waits_for_the_first_to_finish():
    """While the window's first upload is in flight its end is unknown: a blocked upload waits for it."""
    budget, clock = make()
    await budget.reserve(900)
    done = anyio.Event()

    async def second() -> None:
        await budget.reserve(200)
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await clock.advance(30.0)
        assert not done.is_set()
        budget.settle()  # finished at t=30
        await clock.advance(99.0)
        assert not done.is_set()
        await clock.advance(1.0)
        await done.wait()
    assert clock.monotonic() == 130.0


async def test_waiters_are_served_first_come_first_served():
    """Blocked uploads proceed in arrival order."""
    budget, clock = make(max_bytes=100)
    await budget.reserve(90)
    budget.settle()
    order: list[str] = []

    async def upload(name: str, size: int) -> None:
        await budget.reserve(size)
        order.append(name)
        budget.settle()

    async with anyio.create_task_group() as tg:
        for name, size in (("a", 50), ("b", 10), ("c", 45)):
            tg.start_soon(upload, name, size)
            await clock.settle()
        assert order == []
        await clock.advance(100.0)
        assert order == ["a", "b"]
        await clock.advance(100.0)
    assert order == ["a", "b", "c"]


async def test_refusal_without_a_known_window_pauses_a_whole_period():
    """A 420 the client cannot place (budget spent elsewhere) pauses uploads for one full period."""
    budget, clock = make(max_bytes=None, period=60.0)
    assert budget.refused() == 60.0
    assert budget.paused_for() == 60.0
    async with clock.autoadvance():
        await budget.reserve(10)
    assert clock.monotonic() == 60.0
    assert budget.paused_for() is None


async def test_refusal_inside_a_known_window_pauses_until_it_ends():
    """A 420 inside the client's own window pauses until that window ends."""
    budget, clock = make(period=100.0)
    await budget.reserve(10)
    budget.settle()
    await clock.advance(40.0)
    assert budget.refused() == 60.0


async def test_disabled_budget_never_waits():
    """max_bytes=None never paces (only a 420 pauses)."""
    budget, clock = make(max_bytes=None)
    for _ in range(5):
        await budget.reserve(10**12)
    assert clock.monotonic() == 0.0


async def test_a_cancelled_wait_takes_nothing():
    """A reservation cancelled while waiting does not count."""
    budget, _ = make(max_bytes=100)
    await budget.reserve(90)
    budget.settle()
    with anyio.move_on_after(0):
        await budget.reserve(50)
    await budget.reserve(9)
    assert "used=99" in repr(budget)


def test_a_file_bigger_than_a_window_is_refused():
    """A single upload that reaches the limit can never be accepted."""
    budget, _ = make(max_bytes=100)
    with pytest.raises(InvalidArgumentError, match="100 bytes"):
        budget.check_size(100)
    budget.check_size(99)
