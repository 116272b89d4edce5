"""The gate: item code's only door to the world (journal commits, API calls, events), and the crash hook.

Every effect of the engine (a journal commit or a remote call) passes through `Gate`, so that:
- stopping and aborting are decided in one place (`stop()`, `abort()`, `on_the_wire()`);
- a commit the journal refuses because the item moved on (a stale result: the item is terminal, or another
  task moved it) surfaces as `StaleItemError`, which item code logs and drops;
- a crash can be injected right before or right after the n-th effect (`CrashPoint`, a test hook enabled
  only by the environment variable `ORCHESTRATOR_CRASH_AT`, read by the CLI), so the crash-safety tests
  sweep every effect boundary instead of killing at a few chosen lines.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar

import anyio
import attrs
from anyio.streams.memory import MemoryObjectSendStream

from _clientkit._clock import Clock

from ._events import Event, StageChanged
from ._journal import Intent, Journal, StaleItemError
from ._scheduler import Lanes, Priority
from ._stages import Item, Stage

__all__ = ["CRASH_ENV", "CrashPoint", "Gate", "StaleItemError"]

log = logging.getLogger("orchestrator")

_T = TypeVar("_T")
CRASH_ENV: Final = "ORCHESTRATOR_CRASH_AT"
CRASH_EXIT: Final = 137  # what a SIGKILL'd process reports, so the tests treat both kinds alike


@attrs.define
class CrashPoint:
    """Test hook: end the process with `os._exit` right `before` or `after` the `n`-th effect (1-based).

    `ORCHESTRATOR_CRASH_AT=before:17` or `after:17`. Nothing is flushed or closed, exactly as with
    `kill -9`; the journal is durable at every commit (WAL), so what was committed survives.
    """

    when: str
    n: int
    seen: int = 0

    @classmethod
    def parse(cls, text: str) -> CrashPoint:
        """`before:N` / `after:N`; a clear `ValueError` otherwise."""
        when, _, number = text.partition(":")
        if when not in ("before", "after") or not number.isdigit() or int(number) < 1:
            raise ValueError(f"{CRASH_ENV}={text!r}: expected 'before:N' or 'after:N' with N >= 1")
        return cls(when, int(number))

    @classmethod
    def from_environ(cls) -> CrashPoint | None:
        """The crash point the environment asks for, or None (the normal case)."""
        text = os.environ.get(CRASH_ENV)
        return cls.parse(text) if text else None

    def before(self, what: str) -> int:
        """An effect is about to happen; its number (effects may nest: a call saves the rate window)."""
        self.seen += 1
        if self.when == "before" and self.seen == self.n:
            self._exit(what)
        return self.seen

    def after(self, number: int, what: str) -> None:
        """Effect `number` (from `before`) has happened."""
        if self.when == "after" and number == self.n:
            self._exit(what)

    def _exit(self, what: str) -> None:
        log.warning("crash point reached: %s effect %d (%s)", self.when, self.n, what)
        os._exit(CRASH_EXIT)


class Gate:
    """Saves, calls and events for item code, with stop/abort control and the crash hook."""

    def __init__(
        self, journal: Journal, lanes: Lanes, clock: Clock, *, crash: CrashPoint | None = None
    ) -> None:
        self._journal = journal
        self._started = journal.wall()  # stage stamps from before this are earlier runs
        self._clock = clock
        self.lanes = lanes
        self._crash = crash
        self._send: MemoryObjectSendStream[Event] | None = None
        self._inflight: set[anyio.CancelScope] = set()
        self.stopping = False
        self.aborted = False

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Admit nothing new (calls already on the wire finish and are committed)."""
        self.stopping = True

    def abort(self) -> None:
        """Also cancel the calls on the wire (they stay as intents for the next run)."""
        self.aborted = True
        self.stopping = True
        for scope in list(self._inflight):
            scope.cancel()

    @contextmanager
    def on_the_wire(self) -> Iterator[None]:
        """Shield a non-idempotent call and the commit of its answer from `stop()` (not `abort()`)."""
        with anyio.CancelScope(shield=True) as scope:
            self._inflight.add(scope)
            try:
                if self.aborted:
                    scope.cancel()
                yield
            finally:
                self._inflight.discard(scope)

    # ------------------------------------------------------------------ effects

    @contextmanager
    def _effect(self, what: str) -> Iterator[None]:
        crash = self._crash
        if crash is None:
            yield
            return
        number = crash.before(what)
        try:
            yield
        finally:  # an effect answered with an error has happened too
            crash.after(number, what)

    def checkpoint(self, what: str) -> None:
        """A point inside a long effect (a download under way) that the crash sweep also visits."""
        with self._effect(what):
            pass

    async def save(
        self,
        item: Item,
        stage: Stage | None = None,
        *,
        reopen: bool = False,
        trash: str | None = None,
        **changes: Any,
    ) -> Stage:
        """Commit a change of `item` (conditional on its stage; see `Journal.save`); the old stage.

        A change of stage is also sent as a `StageChanged` event.
        """
        with self._effect(f"save {item.key} {stage.value if stage else 'fields'}"):
            old = await self._journal.save(item, stage, reopen=reopen, trash=trash, **changes)
        if stage is not None and stage is not old:
            await self.emit(
                StageChanged(key=item.key, old=old, new=stage, at=self._clock.monotonic())
            )
        return old

    async def add(self, items: Iterable[Item]) -> None:
        """Insert new items into the journal."""
        with self._effect("add items"):
            await self._journal.add(items)

    async def set_meta(self, name: str, value: Any) -> None:
        """Store a batch-wide fact."""
        with self._effect(f"meta {name}"):
            await self._journal.set_meta(name, value)

    async def untrash(self, remote_id: str) -> None:
        """Media in the trash was deleted."""
        with self._effect(f"untrash {remote_id}"):
            await self._journal.untrash(remote_id)

    async def trash(self) -> list[str]:
        """Media the batch let go of and must still delete."""
        return await self._journal.trash()

    async def count_fetch(self, item: Item) -> None:
        """One more fetch of the item's staged file (dropped once the item is terminal)."""
        try:
            with self._effect(f"fetch {item.key}"):
                await self._journal.count_fetch(item)
        except StaleItemError:
            log.debug("fetch of a finished item not counted", extra={"item": item.key})

    async def call(
        self,
        priority: Priority | None,
        fn: Callable[..., Awaitable[_T]],
        *args: Any,
        **kwargs: Any,
    ) -> _T:
        """One remote call; API calls (`priority` not None) pass the priority gate first.

        Calls that need to hold the gate across more (UploadMedia, StartJob and their commits) pass None
        and hold `lanes.calls` themselves; downloads pass None (they are not API calls).
        """
        name = getattr(fn, "__name__", "call")
        if priority is None:
            with self._effect(name):
                return await fn(*args, **kwargs)
        async with self.lanes.calls.hold(priority):
            with self._effect(name):
                return await fn(*args, **kwargs)

    # ------------------------------------------------------------------ reads, which are not effects

    async def load(self) -> list[Item]:
        """Every item of the journal."""
        return await self._journal.load()

    async def get_meta(self, name: str) -> Any:
        """A batch-wide fact (None when absent)."""
        return await self._journal.get_meta(name)

    async def intents(self, key: str) -> list[Intent]:
        """The intents recorded for one item, oldest first."""
        return await self._journal.intents(key)

    def since(self, item: Item, stage: Stage) -> float | None:
        """When `item` entered `stage` in an earlier run, on the runner's clock (None: not before this run).

        The journal stamps stages on the wall clock, so this holds across runs: a resumed item's phase
        began in the run that was killed, not when this run started waiting.
        """
        entered = item.timings.get(stage.value)
        if entered is None or entered >= self._started:
            return None
        return self._clock.monotonic() - max(self._journal.wall() - entered, 0.0)

    def wall(self) -> float:
        """The journal's wall clock (what stamps the items' timings)."""
        return self._journal.wall()

    @property
    def fingerprint(self) -> str:
        """The job spec's fingerprint (stored on every item)."""
        return self._journal.spec.fingerprint

    # ------------------------------------------------------------------ events

    def attach(self, send: MemoryObjectSendStream[Event] | None) -> None:
        """Send events to `send` (None: drop them)."""
        self._send = send

    async def emit(self, event: Event) -> None:
        """Send an event; transitions are not lossy, but a stop never blocks on a slow reader."""
        send = self._send
        if send is None:
            return
        if self.stopping:  # nobody may be reading any more
            self.emit_nowait(event)
            return
        try:
            await send.send(event)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._send = None  # nobody listens any more; the batch goes on

    def emit_nowait(self, event: Event) -> None:
        """Send a progress event if there is room; progress is lossy."""
        send = self._send
        if send is None:
            return
        try:
            send.send_nowait(event)
        except anyio.WouldBlock:
            pass
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._send = None
