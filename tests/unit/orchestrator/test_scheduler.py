"""The priority gate: best priority first, FIFO within one, cancel-safe, forced places."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from orchestrator._scheduler import Lanes, Priority, PrioritySemaphore


async def _settle() -> None:
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


async def test_free_places_go_to_the_best_priority_first():
    """With one place taken, waiters are served FINISH, then UPLOAD, then POLL, FIFO within each."""
    gate = PrioritySemaphore(1)
    order: list[str] = []
    await gate.acquire()

    async def waiter(name: str, priority: Priority) -> None:
        async with gate.hold(priority):
            order.append(name)

    async with anyio.create_task_group() as tg:
        for name, priority in [
            ("poll1", Priority.POLL),
            ("upload1", Priority.UPLOAD),
            ("finish1", Priority.FINISH),
            ("upload2", Priority.UPLOAD),
            ("finish2", Priority.FINISH),
        ]:
            tg.start_soon(waiter, name, priority)
            await _settle()
        assert gate.waiting == 5
        assert gate.waiting_at_or_before(Priority.UPLOAD) == 4
        gate.release()
    assert order == ["finish1", "finish2", "upload1", "upload2", "poll1"]
    assert gate.used == 0


async def test_a_cancelled_waiter_gives_its_turn_away():
    """Cancelling a waiter, before or after it was granted a place, never loses the place."""
    gate = PrioritySemaphore(1)
    await gate.acquire()
    served: list[str] = []

    async def waiter(name: str) -> None:
        async with gate.hold(Priority.UPLOAD):
            served.append(name)

    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as doomed:
            doomed.start_soon(waiter, "cancelled-waiting")
            await _settle()
            doomed.cancel_scope.cancel()
        async with anyio.create_task_group() as granted:
            granted.start_soon(waiter, "cancelled-granted")
            await _settle()
            tg.start_soon(waiter, "served")
            await _settle()
            gate.release()  # grants the place to "cancelled-granted"...
            granted.cancel_scope.cancel()  # ...which is cancelled before it runs
    assert "served" in served
    assert "cancelled-waiting" not in served
    assert gate.used == 0


async def test_forced_places_exceed_the_bound():
    """Resumed items are admitted over the bound; new ones wait until it is back under."""
    gate = PrioritySemaphore(1)
    await gate.acquire()
    await gate.acquire(force=True)
    assert gate.used == 2
    with anyio.move_on_after(0.05) as scope:
        await gate.acquire()
    assert scope.cancelled_caught
    gate.release()
    gate.release()
    await gate.acquire()
    assert gate.used == 1


def test_bounds_are_validated_and_lanes_built():
    """A gate needs at least one place; Lanes.create applies each bound."""
    with pytest.raises(ValueError, match="slots"):
        PrioritySemaphore(0)
    lanes = Lanes.create(max_active=3, max_calls=2, max_downloads=5)
    assert lanes.active.slots == 3
    assert lanes.calls.slots == 2
    assert lanes.downloads.total_tokens == 5
    assert lanes.uploads.total_tokens == 1
