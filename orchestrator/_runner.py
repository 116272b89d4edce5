"""The engine: a `Runner` drives every item of a batch through the stage machine, crash-safe.

```python
async with Runner(adapter, journal, config=RunnerConfig(out_dir=out), stager=server) as runner:
    async for event in runner.run(inputs):
        ...
```

- `Runner` is an async context manager that owns its task group; `run()` starts the batch in it and returns
  the receive end of a memory object stream of events (never an async generator holding a task group).
- The Runner wires collaborators, each with one job: the `Gate` (`_effects.py`: the only door to the
  journal, the service and the event stream), the `ItemMachine` (`_item.py`: one task per admitted item
  walks the step table; every transition is committed before the next remote call, UploadMedia/StartJob
  behind an intent), the `Watcher` (`_watch.py`: mailboxes, waits, the poll loop; callbacks via
  `notify()`), the `Reconciler` (`_reconcile.py`: unknown outcomes), and `prepare` (`_inputs.py`).
- Every API call passes the priority gate (`_scheduler.py`): calls that finish items first, uploads next,
  polls last. Lanes bound active items, uploads, staging and downloads separately.
- Failures isolate: an item's failure is recorded with its reason and the rest go on. A transient error
  (the call certainly had no effect) is retried after a backoff, a bounded number of times.
- `stop()` (first Ctrl-C) admits nothing new and lets calls already on the wire finish and be committed;
  `abort()` (second Ctrl-C) cancels those too. Journal commits are shielded either way, so the journal is
  always consistent; unanswered calls are left as intents and reconciled on the next run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Final, Self

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from _clientkit._clock import Clock, SystemClock

from ._attribution import UploadCallbacks
from ._budget import JournaledWindow
from ._config import RunnerConfig
from ._effects import CrashPoint, Gate
from ._events import BatchDone, Event
from ._inputs import input_key, prepare
from ._item import ItemMachine
from ._journal import Journal, JournalError
from ._polling import PollPlanner
from ._reconcile import Reconciler
from ._scheduler import Lanes, Priority
from ._seal import UploadSeal
from ._service import (
    BatchFatalError,
    Preflight,
    RemoteMedia,
    RemoteStatus,
    ServiceAdapter,
    sweep_phases,
)
from ._stages import ACTIVE_STAGES, TERMINAL_STAGES, IllegalTransitionError, Item, Stage
from ._staging import HoldsFetches, Stager
from ._watch import Watcher

__all__ = ["Runner", "RunnerConfig", "input_key"]

log = logging.getLogger("orchestrator")

_EVENT_BUFFER: Final = 1024
_WINDOW: Final = "rate_window"  # the journal's copy of the limiter's live window


class Runner(anyio.AsyncContextManagerMixin):
    """Runs a batch through a `ServiceAdapter`, journaled, inside one rate budget (see module docstring).

    `window` (the client's limiter, wrapped) keeps the rate window in the journal, so that a rerun right
    after a kill never overruns the account's window (`_budget.py`). `callbacks` gives each staged input's
    upload its own callback URL, so several uploads may be in flight (`_attribution.py`). `crash_at` is a test hook
    (`CrashPoint`): it ends the process at the n-th effect, for the crash sweep.
    """

    def __init__(
        self,
        adapter: ServiceAdapter,
        journal: Journal,
        *,
        config: RunnerConfig,
        stager: Stager | None = None,
        clock: Clock | None = None,
        crash_at: CrashPoint | None = None,
        window: JournaledWindow | None = None,
        callbacks: UploadCallbacks | None = None,
    ) -> None:
        self._adapter = adapter
        self._window = window
        self._config = config
        self._clock: Clock = clock or SystemClock()
        lanes = Lanes.create(
            max_active=config.max_active,
            max_calls=config.max_calls,
            max_uploads=config.max_uploads,
            max_staging=config.max_staging,
            max_downloads=config.max_downloads,
        )
        poll = config.poll
        if config.notify_url is not None and not poll.webhook:
            poll = attrs.evolve(poll, webhook=True)
        planner = PollPlanner(poll, sweep_phases=sweep_phases(adapter))
        self._gate = Gate(journal, lanes, self._clock, crash=crash_at)
        self._watcher = Watcher(
            adapter, self._gate, planner, self._clock, phase_timeout=config.phase_timeout
        )
        self._items: dict[str, Item] = {}
        # the staging server holds a fetch until its upload's answer is committed (`_seal.py`)
        seal = UploadSeal(hold=config.fetch_hold) if isinstance(stager, HoldsFetches) else None
        reconciler = Reconciler(
            adapter, self._gate, self._items, stager=stager, clock=self._clock, settle=config.settle
        )
        self._machine = ItemMachine(
            adapter,
            self._gate,
            self._watcher,
            reconciler,
            config=config,
            stager=stager,
            clock=self._clock,
            callbacks=callbacks,
            seal=seal,
            items=self._items,
        )
        if isinstance(stager, HoldsFetches):
            stager.set_fetch_hook(self.record_fetch)
        self._tg: anyio.abc.TaskGroup | None = None
        self._running = False
        self._fatal: str | None = None
        self._run_scope: anyio.CancelScope | None = None
        self._receive: MemoryObjectReceiveStream[Event] | None = None
        self._finished = anyio.Event()

    def __repr__(self) -> str:
        return f"<orchestrator.Runner service={self._adapter.name!r} items={len(self._items)}>"

    # ------------------------------------------------------------------ lifecycle and control

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncIterator[Self]:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                try:
                    yield self
                except BaseException:
                    self.abort()
                    raise
                finally:
                    if self._running:
                        self.stop()
                    self._tg = None
        finally:
            if self._receive is not None:
                self._receive.close()  # the consumer's end: `async for` alone never closes it

    def run(self, inputs: Iterable[str]) -> MemoryObjectReceiveStream[Event]:
        """Start the batch (journal items plus `inputs`); returns the stream of its events."""
        if self._tg is None:
            raise RuntimeError("use the Runner as `async with Runner(...) as runner:` first")
        if self._running or self._finished.is_set():
            raise RuntimeError("a Runner runs one batch")
        send, receive = anyio.create_memory_object_stream[Event](_EVENT_BUFFER)
        self._receive = receive
        self._running = True
        self._tg.start_soon(self._run, list(inputs), send)
        return receive

    def stop(self) -> None:
        """Admit nothing new; let calls already sent finish and be committed; then end the batch."""
        if not self._gate.stopping:
            log.info("stop requested: admitting nothing new")
        self._gate.stop()
        if self._run_scope is not None:
            self._run_scope.cancel()

    def abort(self) -> None:
        """Stop now, also cancelling calls on the wire (they stay as intents for the next run)."""
        self._gate.abort()
        self.stop()

    @property
    def stopping(self) -> bool:
        """True once `stop()` or `abort()` was called."""
        return self._gate.stopping

    @property
    def items(self) -> list[Item]:
        """The items of the batch, in batch order (a snapshot)."""
        return sorted(self._items.values(), key=lambda item: item.seq)

    async def wait_finished(self) -> None:
        """Wait until the batch has ended (after `BatchDone` was sent)."""
        await self._finished.wait()

    async def record_fetch(self, token: str) -> bool:
        """The service started fetching a staged file: once its upload's answer is committed (the
        seal), count it in the journal (upload evidence) before a byte is served. False: refuse it
        (its upload was given up, so its media must fail)."""
        key = self._machine.uploads.key_of_token(token)
        item = self._items.get(key) if key is not None else None
        if item is None or item.stage_token != token:
            return True
        if not await self._machine.uploads.admit_fetch(token):
            return False
        if item.stage_token != token:
            return False  # given up while it waited
        await self._gate.count_fetch(item)
        return True

    def notify(self, remote_id: str, status: RemoteStatus) -> None:
        """News about `remote_id` from a callback (webhook mode); unknown ids are kept for a while."""
        self._watcher.notify(remote_id, status)

    # ------------------------------------------------------------------ the batch

    async def _run(self, inputs: list[str], send: MemoryObjectSendStream[Event]) -> None:
        self._gate.attach(send)
        try:
            with anyio.CancelScope() as self._run_scope:
                if self._gate.stopping:
                    self._run_scope.cancel()
                await self._batch(inputs)
        except* (JournalError, IllegalTransitionError, BatchFatalError) as group:
            # the journal cannot be trusted any more, or our disk is full: end the batch, say why
            self._gate.stop()
            errors = list(_leaves(group))
            self._fatal = "; ".join(dict.fromkeys(str(exc) for exc in errors))
            for exc in errors:
                log.exception("batch stopped: %s", exc, exc_info=exc)
        finally:
            with anyio.CancelScope(shield=True):
                await self._close_window()
                counts = self._counts()
                done = BatchDone(
                    done=counts[Stage.DONE],
                    failed=counts[Stage.FAILED],
                    parked=counts[Stage.PARKED],
                    pending=counts[None],
                    interrupted=self._gate.stopping and self._fatal is None,
                    error=self._fatal,
                    at=self._clock.monotonic(),
                )
                # the last event is not lossy: give a slow reader a moment, but never hang on it
                with anyio.move_on_after(2.0), contextlib.suppress(anyio.BrokenResourceError):
                    await send.send(done)
                self._gate.attach(None)
                await send.aclose()
                self._running = False
                self._finished.set()

    async def _open_window(self) -> None:
        if self._window is not None:
            self._window.restore(await self._gate.get_meta(_WINDOW))
            self._window.bind(functools.partial(self._gate.set_meta, _WINDOW))

    async def _close_window(self) -> None:
        if self._window is not None and self._fatal is None:
            try:
                await self._window.save_final()
            except JournalError as exc:
                log.warning("could not save the rate window: %s", exc)
            self._window.bind(None)

    async def _preflight(self) -> list[RemoteMedia] | None:
        """The batch's first call, when the adapter has one: unreachable or refused stops the batch."""
        if not isinstance(self._adapter, Preflight):
            return None
        try:
            return await self._gate.call(Priority.FINISH, self._adapter.preflight)
        except BatchFatalError:
            raise
        except Exception as exc:  # the service answered (rate limit, 5xx): it is there; go on
            log.warning("preflight failed: %s", type(exc).__name__)
            return None

    def _counts(self) -> dict[Stage | None, int]:
        counts: dict[Stage | None, int] = {Stage.DONE: 0, Stage.FAILED: 0, Stage.PARKED: 0, None: 0}
        for item in self._items.values():
            stage = item.stage if item.stage in TERMINAL_STAGES else None
            if self._machine.needs_cleanup(item):
                stage = None  # its media still waits to be deleted
            counts[stage] += 1
        return counts

    async def _batch(self, inputs: list[str]) -> None:
        machine = self._machine
        await self._open_window()
        known, work = await prepare(
            inputs, gate=self._gate, machine=machine, adapter=self._adapter, clock=self._clock
        )
        self._items.update(known)
        for item in known.values():
            self._watcher.watch(item)
            machine.uploads.remember_token(item)
        resumed = [i for i in work if i.stage in ACTIVE_STAGES or machine.needs_cleanup(i)]
        # the longest work first: the service's processing time grows with the media's size
        fresh = sorted(
            (i for i in work if i.stage in (Stage.QUEUED, Stage.STAGED)),
            key=lambda i: (i.size is None, -(i.size or 0), i.seq),
        )
        lanes = self._gate.lanes
        listing = await self._preflight() if work else None
        async with anyio.create_task_group() as poll_tg:
            poll_tg.start_soon(self._watcher.poll_loop)
            for remote_id in await self._gate.trash():
                await machine.uploads.delete_trash(remote_id)
            async with anyio.create_task_group() as items_tg:
                open_uploads = [i for i in resumed if i.stage is Stage.UPLOADING]
                if fresh or open_uploads:
                    await machine.uploads.reconcile_open_uploads(
                        open_uploads, baseline=bool(fresh), listing=listing
                    )
                for item in resumed:
                    await lanes.active.acquire(force=True)
                    items_tg.start_soon(machine.drive, item)
                for item in fresh:
                    if self._gate.stopping:
                        break
                    await lanes.active.acquire(Priority.UPLOAD)
                    items_tg.start_soon(machine.drive, item)
            if not self._gate.stopping and not any(
                i.stage in (Stage.UPLOADING, Stage.PARKED) for i in self._items.values()
            ):
                await (
                    machine.uploads.sweep_orphans()
                )  # no upload is open: what is new on the account is known
            poll_tg.cancel_scope.cancel()


# ---------------------------------------------------------------------- helpers: pure, or run in a thread


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
