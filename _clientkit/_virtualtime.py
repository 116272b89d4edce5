"""Virtual time on an asyncio loop, shared by the tests and the benchmarks (not used by library code).

`VirtualTimeLoop` is an event loop whose clock jumps to the next timer whenever nothing is runnable, so code
that reads `loop.time()` itself (aiolimiter) or sleeps on the loop's timers (anyio, asyncio) runs with no
real sleeping; `run_virtual` runs a coroutine on a fresh one; `LoopClock` is a `Clock` reading the running
loop's time. It lives here, in the one private package both `tests/` and `benchmarks/` already import,
rather than in either of them: tests must not import the benchmarks, and `tests/` is not a package the
benchmarks could import. `tests/fakeclock.py` re-exports it beside its `FakeClock`.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Callable, Coroutine, Mapping, Sized
from typing import Any, TypeVar

import anyio

__all__ = ["LoopClock", "VirtualTimeLoop", "run_virtual"]

_T = TypeVar("_T")


class LoopClock:
    """A `Clock` that reads the running event loop's time (virtual on a `VirtualTimeLoop`)."""

    def monotonic(self) -> float:
        """The running loop's `time()`."""
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        """`anyio.sleep`, which runs on the loop's own timers."""
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "LoopClock()"


class _JumpingSelector(selectors.BaseSelector):
    """Wraps a real selector: instead of blocking until the next timer, moves the loop's time to it."""

    def __init__(self, loop_time: list[float], run_queue: Callable[[], Sized]) -> None:
        self._inner = selectors.DefaultSelector()
        self._loop_time = loop_time
        self._run_queue = run_queue

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:  # no timer at all: only real I/O (a thread, a socket) can wake the loop
            return self._inner.select(None)
        events = self._inner.select(0)
        if not events:
            if timeout > 0:
                self._loop_time[0] += timeout
            elif not self._run_queue():
                # Only timers due now: let a hair of time pass, as on a real clock, so that a callback
                # that keeps re-arming itself "now" (float rounding, e.g. aiolimiter) cannot livelock.
                self._loop_time[0] = math.nextafter(self._loop_time[0], math.inf)
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: when nothing is runnable, it jumps to the next timer at once.

    Real I/O still works and takes precedence; only waiting for timers is skipped.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._virtual_time = [float(start)]
        super().__init__(_JumpingSelector(self._virtual_time, self._run_queue))

    def time(self) -> float:
        return self._virtual_time[0]

    def _run_queue(self) -> Sized:
        ready: Sized = getattr(self, "_ready", ())  # asyncio's queue of callbacks to run next
        return ready


def run_virtual(main: Callable[[], Coroutine[Any, Any, _T]], *, start: float = 0.0) -> _T:
    """Run `main()` to completion on a fresh `VirtualTimeLoop` and close the loop."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(start)) as runner:
        return runner.run(main())
