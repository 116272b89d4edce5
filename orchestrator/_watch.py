"""The watcher: what the service says about each item reaches the item's task, from polls or callbacks.

- One mailbox per item holds the latest news and an event that wakes the item's task (`wait_for`).
- The poll loop asks the `PollPlanner` what to spend the budget on: one sweep (ListMedia) for the batch, or
  GetProgress probes for the items most likely to have moved. It delivers what it learns.
- Callbacks (`notify`) deliver the same way; news about an id not bound yet (a callback that outruns the
  UploadMedia answer) is kept until `bind` names its item.
- A probe due for an item whose adapter may start jobs on a prediction is delivered as `DUE` when the
  planner says speculation has earned it (`PollPlanner.speculate`): the item tries StartJob itself instead
  of spending a GetProgress.

News is only ever delivered to a mailbox; an item that has finished no longer waits, so late news is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import anyio.lowlevel
import attrs

from _clientkit._clock import Clock, SystemClock

from ._effects import Gate
from ._events import ItemProgress
from ._polling import PHASE_ENDS, PollPlanner
from ._scheduler import Priority
from ._service import (
    ItemError,
    Phase,
    RemoteStatus,
    ServiceAdapter,
    list_media,
    starts_on_prediction,
)
from ._stages import TERMINAL_STAGES, Item, Stage

__all__ = ["DUE", "Watcher"]

log = logging.getLogger("orchestrator")

# delivered to an item whose probe is due when the adapter starts jobs on predictions
DUE: Final = RemoteStatus(Phase.UNKNOWN, state="due")
# the stage whose journal stamp says when each waited-for phase began in an earlier run (a rerun)
_BEGAN: Final = {Phase.PROCESSING: Stage.UPLOADED, Phase.RUNNING: Stage.RUNNING}
_EARLY_LIMIT: Final = 10_000


@attrs.define(eq=False)
class _Mailbox:
    """The latest news about one remote item, and an event to wake the item's task."""

    status: RemoteStatus | None = None
    event: anyio.Event = attrs.Factory(anyio.Event)


class Watcher:
    """Mailboxes, waits and the poll loop (see the module docstring)."""

    def __init__(
        self,
        adapter: ServiceAdapter,
        gate: Gate,
        planner: PollPlanner,
        clock: Clock,
        *,
        phase_timeout: float | None,
    ) -> None:
        self._adapter = adapter
        self._gate = gate
        self._planner = planner
        self._clock = clock
        self._phase_timeout = phase_timeout
        self._items: dict[str, Item] = {}
        self._by_remote: dict[str, str] = {}
        self._mail: dict[str, _Mailbox] = {}
        self._early: dict[str, RemoteStatus] = {}
        self._wake = anyio.Event()
        self._probes_in_flight = 0
        self._sweeping = False  # a sweep is queued at the call gate or on the wire
        # a refused StartJob is judged by a GetProgress until a refusal is recognised by its answer
        self._refusal_cost = 2

    # ------------------------------------------------------------------ who is who

    def watch(self, item: Item) -> None:
        """Give `item` a mailbox (and bind its remote id, if it has live media)."""
        self._items[item.key] = item
        self._mail.setdefault(item.key, _Mailbox())
        if item.remote_id is not None and not item.remote_deleted:
            self._by_remote[item.remote_id] = item.key

    def bind(self, item: Item, remote_id: str) -> None:
        """`remote_id` is `item`'s media: route its news there, including news that came early."""
        self._by_remote[remote_id] = item.key
        early = self._early.pop(remote_id, None)
        if early is not None:
            self.deliver(item.key, early)

    def notify(self, remote_id: str, status: RemoteStatus) -> None:
        """News from a callback; an id not bound yet is kept for a while."""
        key = self._by_remote.get(remote_id)
        if key is None:
            if len(self._early) < _EARLY_LIMIT:
                self._early[remote_id] = status
            return
        self._deliver_about(remote_id, key, status, callback=True)

    def _deliver_about(
        self, remote_id: str, key: str, status: RemoteStatus, *, callback: bool = False
    ) -> bool:
        """Deliver news about `remote_id` only while it is still the item's media.

        An item whose media it let go of (uploaded again after a failed ingest) waits on new media: news of
        the old one (a late callback, a probe or sweep answered about it) would fail the new wait.
        """
        item = self._items.get(key)
        if item is None or item.remote_id != remote_id:
            log.info("news about media the item let go of; dropped", extra={"item": key})
            return False
        self.deliver(key, status, callback=callback)
        return True

    def fetched(self, item: Item) -> None:
        """The service started fetching the item's input: its analysis begins now (`began`)."""
        if item.stage is Stage.UPLOADED:
            self._planner.began(item.key, Phase.PROCESSING, self._clock.monotonic())

    def deliver(self, key: str, status: RemoteStatus, *, callback: bool = False) -> None:
        """Put news in an item's mailbox and wake it; news for a finished item is dropped.

        `callback`: the service sent it unasked (the planner learns which phases it reports).
        """
        item = self._items.get(key)
        if item is None or item.stage in TERMINAL_STAGES:
            return
        if status is not DUE:
            self._planner.observe(key, status, self._clock.monotonic(), callback=callback)
        mailbox = self._mail[key]
        mailbox.status = status
        mailbox.event.set()

    def refusals_recognised(self) -> None:
        """A refused StartJob was recognised as "not ready" by its answer alone: refusals cost 1 request."""
        self._refusal_cost = 1

    # ------------------------------------------------------------------ waiting

    async def wait_for(
        self,
        item: Item,
        phase: Phase,
        *,
        on_due: Callable[[Item], Awaitable[bool]] | None = None,
    ) -> RemoteStatus:
        """Wait until the service reports the end of `phase` for the item.

        With `on_due`, a probe due for the item calls `on_due(item)` instead of asking the service (a start
        tried on the prediction); it returns True when the item left the phase, and `wait_for` returns an
        UNKNOWN status. Fails the item (`StageTimeout`) after `phase_timeout` (checked whenever news arrives).
        """
        mailbox = self._mail[item.key]
        ends = PHASE_ENDS[phase]
        began = self._clock.monotonic()
        timeout = self._phase_timeout
        since = self._gate.since(item, _BEGAN[phase])
        self._planner.track(item.key, phase, began, size=item.size, since=since)
        self.wake()
        try:
            while True:
                if mailbox.status is None:
                    # only wait on a fresh event when nothing arrived (news may come during on_due)
                    mailbox.event = anyio.Event()
                    await mailbox.event.wait()
                    continue
                status, mailbox.status = mailbox.status, None
                if timeout is not None and self._clock.monotonic() - began > timeout:
                    raise ItemError(
                        "StageTimeout", f"still {phase.value} after {timeout:g} s; given up"
                    )
                if status is DUE:
                    if on_due is not None and await self._due(item, phase, on_due):
                        return RemoteStatus(Phase.UNKNOWN)
                elif status.phase in ends:
                    return status
                elif status.phase is phase:
                    self._gate.emit_nowait(
                        ItemProgress(
                            key=item.key,
                            state=status.state,
                            progress=status.progress,
                            at=self._clock.monotonic(),
                        )
                    )
        finally:
            self._planner.untrack(item.key)

    async def _due(
        self, item: Item, phase: Phase, on_due: Callable[[Item], Awaitable[bool]]
    ) -> bool:
        moved = await on_due(item)
        now = self._clock.monotonic()
        self.wake()  # a speculative contact answered: the window may take the next one
        if moved:
            if item.stage is Stage.RUNNING:  # ready by now: learn the duration
                self._planner.observe(item.key, RemoteStatus(Phase.RUNNING), now)
            return True
        self._planner.observe(item.key, RemoteStatus(phase), now)
        return False

    # ------------------------------------------------------------------ the poll loop

    def wake(self) -> None:
        """Have the poll loop plan again now."""
        self._wake.set()

    async def poll_loop(self) -> None:
        """Plan sweeps and probes within the call gate's budget, forever (cancelled by the runner)."""
        async with anyio.create_task_group() as tg:
            while True:
                self._wake = anyio.Event()
                now = self._clock.monotonic()
                budget = max(self._gate.lanes.calls.slots // 2, 1) - self._probes_in_flight
                plan = self._planner.plan(
                    now,
                    max_probes=max(budget, 0),
                    may_sweep=not self._sweeping,
                    refusal_cost=self._refusal_cost,
                )
                if plan.sweep:
                    self._probes_in_flight += 1
                    self._sweeping = True
                    tg.start_soon(self._sweep)
                for key in plan.probes:
                    self._probes_in_flight += 1
                    tg.start_soon(self._probe, key)
                wake_at = plan.wake_at
                if budget <= 0 and wake_at is not None:
                    wake_at = max(wake_at, now + self._planner.settings.min_interval)
                await self._sleep_until(wake_at)

    async def _sleep_until(self, deadline: float | None) -> None:
        """Sleep on the clock until `deadline`, or until the poller is woken."""
        wake = self._wake
        if deadline is None:
            await wake.wait()
            return
        delay = deadline - self._clock.monotonic()
        if delay <= 0:
            await anyio.lowlevel.checkpoint()
            return
        if isinstance(self._clock, SystemClock):  # the common case, without a task group
            with anyio.move_on_after(delay):
                await wake.wait()
            return
        async with anyio.create_task_group() as tg:

            async def timer() -> None:
                await self._clock.sleep(delay)
                tg.cancel_scope.cancel()

            async def waker() -> None:
                await wake.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(timer)
            tg.start_soon(waker)

    async def _probe(self, key: str) -> None:
        answered = False
        try:
            answered = await self._contact(key)
        finally:
            if not answered:
                self._planner.unanswered(key)
            self._probes_in_flight -= 1
            self.wake()

    async def _contact(self, key: str) -> bool:
        """Ask about `key` (or have it try its next step): True when an answer reached the planner."""
        item = self._items[key]
        if item.remote_id is None or item.stage in TERMINAL_STAGES:
            return False
        if starts_on_prediction(self._adapter):
            if item.stage is Stage.STARTING:
                return False  # a try is on the wire; its answer is the observation
            if item.stage is Stage.UPLOADED and self._planner.speculate(
                key, refusal_cost=self._refusal_cost
            ):
                self.deliver(key, DUE)  # the item tries StartJob itself, no GetProgress
                return True
        remote_id = item.remote_id
        try:
            status = await self._gate.call(Priority.POLL, self._adapter.status, remote_id)
        except Exception as exc:
            log.info("probe failed", extra={"item": key, "error": type(exc).__name__})
            return False
        return self._deliver_about(remote_id, key, status)

    async def _sweep(self) -> None:
        try:
            now = self._clock.monotonic()
            try:
                # one call that can move every waiting item toward done: it goes with the calls that
                # finish items, not behind them (queued behind a batch's deletes, it delays downloads)
                media = await self._gate.call(Priority.FINISH, list_media(self._adapter))
            except Exception as exc:
                log.info("sweep failed", extra={"error": type(exc).__name__})
                return
            restored = []
            for entry in media:
                key = self._by_remote.get(entry.remote_id)
                if key is None or entry.result_url is None or key not in self._planner:
                    continue
                restored.append(key)
                restored_status = RemoteStatus(Phase.RESTORED, result_url=entry.result_url)
                self._deliver_about(entry.remote_id, key, restored_status)
            self._planner.observe_sweep(now, restored)
        finally:
            self._probes_in_flight -= 1
            self._sweeping = False
            self.wake()
