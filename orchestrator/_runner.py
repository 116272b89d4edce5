"""The engine: a `Runner` drives every item of a batch through the stage machine, crash-safe.

```python
async with Runner(adapter, journal, config=RunnerConfig(out_dir=out), stager=server) as runner:
    async for event in runner.run(inputs):
        ...
```

- `Runner` is an async context manager that owns its task group; `run()` starts the batch in it and returns
  the receive end of a memory object stream of events (never an async generator holding a task group).
- Each admitted item has one task that walks the stage table (`_stages.py`); every transition is committed
  to the journal before the next remote call, and UploadMedia/StartJob are preceded by an intent.
- One poller task plans sweeps and probes (`_polling.py`) and delivers what it learns to the waiting items;
  callbacks (`notify()`) deliver the same way in webhook mode.
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
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Final, Self, TypeVar

import anyio
import anyio.abc
import anyio.to_thread
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from _clientkit._clock import Clock, SystemClock

from ._events import (
    BatchDone,
    DownloadProgress,
    Event,
    ItemDone,
    ItemFailed,
    ItemProgress,
    ItemQueued,
    StageChanged,
)
from ._journal import Journal, JournalError
from ._polling import PollPlanner, PollSettings
from ._reconcile import Verdict, judge_start, judge_uploads, upload_candidates
from ._scheduler import Lanes, Priority
from ._service import (
    ItemError,
    NotReadyError,
    OutcomeUnknownError,
    Phase,
    RemoteMedia,
    RemoteStatus,
    ServiceAdapter,
)
from ._stages import ACTIVE_STAGES, TERMINAL_STAGES, IllegalTransitionError, Item, Stage
from ._staging import Stager, is_url

__all__ = ["Runner", "RunnerConfig", "input_key"]

log = logging.getLogger("orchestrator")

_T = TypeVar("_T")
_EVENT_BUFFER: Final = 1024
# delivered to an item whose probe is due when the adapter starts jobs on predictions
_DUE: Final = RemoteStatus(Phase.UNKNOWN, state="due")
_HASH_CHUNK: Final = 1024 * 1024
# statuses that end each waited-for phase; anything else is progress (or stale news)
_ENDS: Final = {
    Phase.PROCESSING: frozenset(
        {Phase.READY, Phase.RUNNING, Phase.RESTORED, Phase.FAILED, Phase.GONE}
    ),
    Phase.RUNNING: frozenset({Phase.RESTORED, Phase.FAILED, Phase.GONE}),
}


@attrs.frozen
class RunnerConfig:
    """How a batch runs.

    Attributes:
        out_dir: where restored files go.
        keep_remote: leave media on the account after downloading (no DeleteMedia).
        retry_failed: put failed items of an earlier run back in the queue.
        notify_url: the full callback URL to hand the service (webhook mode), or None to poll.
        max_active: items that may hold media on the account at once.
        max_calls: API calls waiting at the client's limiter or in flight at once (the priority gate).
        max_uploads: UploadMedia calls at once (1: every crash is attributable).
        max_staging: local files being staged at once.
        max_downloads: downloads at once.
        poll: the poll planner's intervals.
        settle: seconds to wait after an unanswered non-idempotent call before judging its outcome.
        step_retries: transient failures of one step before its item fails.
        backoff: first delay between retries of a step (doubles, capped at `backoff_cap`).
        backoff_cap: the longest delay between retries of a step.
        verify_done: check on a rerun that the outputs of done items are still on disk.
        phase_timeout: an item waiting longer than this for one remote phase (analysis, or its job)
            fails with `StageTimeout` (checked whenever the item hears from the service); None: never.
    """

    out_dir: Path
    keep_remote: bool = False
    retry_failed: bool = False
    notify_url: str | None = None
    max_active: int = 32
    max_calls: int = 8
    max_uploads: int = 1
    max_staging: int = 4
    max_downloads: int = 4
    poll: PollSettings = attrs.Factory(PollSettings)
    settle: float = 30.0
    step_retries: int = 5
    backoff: float = 1.0
    backoff_cap: float = 30.0
    verify_done: bool = True
    phase_timeout: float | None = None


@attrs.define(eq=False)
class _Mailbox:
    """The latest news about one remote item, and an event to wake the item's task."""

    status: RemoteStatus | None = None
    event: anyio.Event = attrs.Factory(anyio.Event)


class Runner(anyio.AsyncContextManagerMixin):
    """Runs a batch through a `ServiceAdapter`, journaled, inside one rate budget (see module docstring)."""

    def __init__(
        self,
        adapter: ServiceAdapter,
        journal: Journal,
        *,
        config: RunnerConfig,
        stager: Stager | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._adapter = adapter
        self._journal = journal
        self._config = config
        self._stager = stager
        self._clock: Clock = clock or SystemClock()
        self._lanes = Lanes.create(
            max_active=config.max_active,
            max_calls=config.max_calls,
            max_uploads=config.max_uploads,
            max_staging=config.max_staging,
            max_downloads=config.max_downloads,
        )
        poll = config.poll
        if config.notify_url is not None and not poll.webhook:
            poll = attrs.evolve(poll, webhook=True)
        self._planner = PollPlanner(poll, sweep_phases=adapter.sweep_phases)
        self._tg: anyio.abc.TaskGroup | None = None
        self._running = False
        self._stopping = False
        self._aborted = False
        self._fatal: str | None = None
        self._run_scope: anyio.CancelScope | None = None
        self._inflight: set[anyio.CancelScope] = set()
        self._send: MemoryObjectSendStream[Event] | None = None
        self._receive: MemoryObjectReceiveStream[Event] | None = None
        self._items: dict[str, Item] = {}
        self._by_remote: dict[str, str] = {}
        self._by_token: dict[str, str] = {}
        self._mail: dict[str, _Mailbox] = {}
        self._early: dict[str, RemoteStatus] = {}
        self._urls: dict[str, str] = {}
        self._adopted: set[str] = set()
        self._poll_wake = anyio.Event()
        self._probes_in_flight = 0
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
        if not self._stopping:
            log.info("stop requested: admitting nothing new")
        self._stopping = True
        if self._run_scope is not None:
            self._run_scope.cancel()

    def abort(self) -> None:
        """Stop now, also cancelling calls on the wire (they stay as intents for the next run)."""
        self._aborted = True
        self.stop()
        for scope in list(self._inflight):
            scope.cancel()

    @property
    def stopping(self) -> bool:
        """True once `stop()` or `abort()` was called."""
        return self._stopping

    @property
    def items(self) -> list[Item]:
        """The items of the batch, in batch order (a snapshot)."""
        return sorted(self._items.values(), key=lambda item: item.seq)

    async def wait_finished(self) -> None:
        """Wait until the batch has ended (after `BatchDone` was sent)."""
        await self._finished.wait()

    async def record_fetch(self, token: str) -> None:
        """The service started fetching a staged file: count it in the journal (upload evidence)."""
        key = self._by_token.get(token)
        item = self._items.get(key) if key is not None else None
        if item is not None and item.stage_token == token:
            await self._journal.count_fetch(item)

    def notify(self, remote_id: str, status: RemoteStatus) -> None:
        """News about `remote_id` from a callback (webhook mode); unknown ids are kept for a while."""
        key = self._by_remote.get(remote_id)
        if key is None:
            if len(self._early) < 10_000:
                self._early[remote_id] = status
            return
        self._deliver(key, status)

    # ------------------------------------------------------------------ the batch

    async def _run(self, inputs: list[str], send: MemoryObjectSendStream[Event]) -> None:
        self._send = send
        try:
            with anyio.CancelScope() as self._run_scope:
                if self._stopping:
                    self._run_scope.cancel()
                await self._batch(inputs)
        except* (JournalError, IllegalTransitionError) as group:
            # the journal cannot be trusted any more: end the batch, say why
            self._stopping = True
            errors = list(_leaves(group))
            self._fatal = "; ".join(dict.fromkeys(str(exc) for exc in errors))
            for exc in errors:
                log.exception("batch stopped: %s", exc, exc_info=exc)
        finally:
            with anyio.CancelScope(shield=True):
                counts = self._counts()
                done = BatchDone(
                    done=counts[Stage.DONE],
                    failed=counts[Stage.FAILED],
                    parked=counts[Stage.PARKED],
                    pending=counts[None],
                    interrupted=self._stopping and self._fatal is None,
                    error=self._fatal,
                    at=self._clock.monotonic(),
                )
                # the last event is not lossy: give a slow reader a moment, but never hang on it
                with anyio.move_on_after(2.0), contextlib.suppress(anyio.BrokenResourceError):
                    await send.send(done)
                self._send = None
                await send.aclose()
                self._running = False
                self._finished.set()

    def _counts(self) -> dict[Stage | None, int]:
        counts: dict[Stage | None, int] = {Stage.DONE: 0, Stage.FAILED: 0, Stage.PARKED: 0, None: 0}
        for item in self._items.values():
            stage = item.stage if item.stage in TERMINAL_STAGES else None
            if item.stage is Stage.FAILED and item.owns_remote and not self._config.keep_remote:
                stage = None  # its media still waits to be deleted
            counts[stage] += 1
        return counts

    async def _batch(self, inputs: list[str]) -> None:
        items = await self._prepare(inputs)
        resumed = [i for i in items if i.stage in ACTIVE_STAGES or self._needs_cleanup(i)]
        fresh = [i for i in items if i.stage in (Stage.QUEUED, Stage.STAGED)]
        async with anyio.create_task_group() as poll_tg:
            poll_tg.start_soon(self._poll_loop)
            async with anyio.create_task_group() as items_tg:
                media = None
                open_uploads = [i for i in resumed if i.stage is Stage.UPLOADING]
                if open_uploads:
                    try:
                        media = await self._reconcile_open_uploads(open_uploads)
                    except Exception as exc:  # each item retries it in its own task
                        log.warning("reconciliation failed: %s", type(exc).__name__)
                if fresh and (media is not None or not open_uploads):
                    # (after a failed reconciliation keep the old baseline: a new one would hide
                    # the unattributed media of those open uploads)
                    await self._take_baseline(media)
                for item in resumed:
                    await self._lanes.active.acquire(force=True)
                    items_tg.start_soon(self._drive, item)
                for item in fresh:
                    if self._stopping:
                        break
                    await self._lanes.active.acquire(Priority.UPLOAD)
                    items_tg.start_soon(self._drive, item)
            poll_tg.cancel_scope.cancel()

    def _needs_cleanup(self, item: Item) -> bool:
        return item.stage is Stage.FAILED and item.owns_remote and not self._config.keep_remote

    def _may_retry(self, item: Item) -> bool:
        """--retry-failed requeues a failed item once its media is deleted (or deliberately kept).

        Requeueing forgets the remote id, so doing it while the journal still owns undeleted media would
        orphan that media on the account.
        """
        return self._config.retry_failed and (not item.owns_remote or self._config.keep_remote)

    # ------------------------------------------------------------------ preparing the batch

    async def _prepare(self, inputs: list[str]) -> list[Item]:
        """Load the journal, add new inputs, verify done items, requeue failures if asked."""
        known = {item.key: item for item in await self._journal.load()}
        new_items = await anyio.to_thread.run_sync(self._new_items, inputs, known)
        if new_items:
            await self._journal.add(new_items)
            known.update((item.key, item) for item in new_items)
        self._items = known
        for item in known.values():
            self._mail[item.key] = _Mailbox()
            if item.remote_id is not None and not item.remote_deleted:
                self._by_remote[item.remote_id] = item.key
            if item.stage_token is not None:
                self._by_token[item.stage_token] = item.key
        now = self._clock.monotonic()
        ordered = sorted(known.values(), key=lambda item: item.seq)
        for item in ordered:
            await self._emit(ItemQueued(key=item.key, input=item.input, stage=item.stage, at=now))
        done = [i for i in ordered if i.stage is Stage.DONE]
        missing = set()
        if self._config.verify_done and done:
            missing = await anyio.to_thread.run_sync(_missing_outputs, done)
        work = []
        for item in ordered:
            if item.stage is Stage.DONE:
                if item.key in missing:
                    log.warning("output of a done item is missing; restoring it again")
                    await self._requeue(item, "output missing")
                    work.append(item)
                else:
                    await self._emit(
                        ItemDone(
                            key=item.key,
                            output_path=item.output_path,
                            size=item.output_size or 0,
                            sha256=item.sha256 or "",
                            skipped=True,
                            at=now,
                        )
                    )
            elif item.stage is Stage.FAILED:
                if self._may_retry(item):
                    await self._requeue(item, "retry failed")
                    work.append(item)
                elif self._config.retry_failed or self._needs_cleanup(item):
                    work.append(item)  # delete its media first, then (if asked) retry
                else:
                    await self._emit_failed(item)
            elif item.stage is Stage.PARKED:
                await self._emit_failed(item)
            else:
                work.append(item)
        return work

    def _new_items(self, inputs: list[str], known: dict[str, Item]) -> list[Item]:
        """Items for inputs the journal does not have yet, each with its own output path (thread)."""
        taken = {item.output_path for item in known.values()}
        seq = max((item.seq for item in known.values()), default=-1) + 1
        fingerprint = self._journal.spec.fingerprint
        new: list[Item] = []
        seen = set(known)
        for text in inputs:
            key = input_key(text)
            if key in seen:
                continue
            seen.add(key)
            size = None
            if not is_url(text):
                try:
                    size = Path(key).stat().st_size
                except OSError:
                    size = None  # staging fails the item with the reason
            output = _unique_path(
                self._config.out_dir, self._adapter.output_name(_base_name(text)), taken
            )
            taken.add(str(output))
            new.append(
                Item(
                    key=key,
                    seq=seq,
                    input=text,
                    output_path=str(output),
                    size=size,
                    spec_fingerprint=fingerprint,
                )
            )
            seq += 1
        return new

    async def _requeue(self, item: Item, why: str) -> None:
        log.info("item requeued", extra={"item": item.key, "why": why})
        self._urls.pop(item.key, None)
        await self._save(
            item,
            Stage.QUEUED,
            stage_token=None,  # a new URL, so the old one's fetches are not evidence for the new upload
            remote_id=None,
            remote_deleted=False,
            restored_url=None,
            bytes_on_disk=0,
            output_size=None,
            sha256=None,
            error_code=None,
            error_message=None,
            fetches=0,
            attempts=item.attempts + 1,
        )

    async def _take_baseline(self, media: list[RemoteMedia] | None) -> None:
        """Remember the media already on the account (evidence for upload reconciliation).

        Taken after open uploads were reconciled (it would otherwise hide their media), reusing that
        reconciliation's listing when there was one.
        """
        if media is None:
            try:
                media = await self._call(Priority.FINISH, self._adapter.sweep)
            except Exception as exc:
                log.warning("could not list the account's media: %s", type(exc).__name__)
                return
        owned = {i.remote_id for i in self._items.values() if i.remote_id is not None}
        baseline = sorted(m.remote_id for m in media if m.remote_id not in owned)
        await self._journal.set_meta("baseline", baseline)

    # ------------------------------------------------------------------ one item

    async def _drive(self, item: Item) -> None:
        """Walk one item to a terminal stage (its `active` place is held by the caller for it)."""
        try:
            if item.stage is Stage.FAILED:
                await self._cleanup_failed(item)
                if self._may_retry(item):
                    await self._requeue(item, "retry failed")
            while item.stage not in TERMINAL_STAGES:
                await self._advance(item)
        except ItemError as exc:
            await self._fail(item, exc.code, exc.message)
        finally:
            self._lanes.active.release()
        if item.stage is Stage.FAILED:
            await self._cleanup_failed(item)
        if item.stage is Stage.DOWNLOADED:
            log.warning("remote media left for the next run to delete", extra={"item": item.key})
        elif item.stage is Stage.DONE:
            await self._emit(
                ItemDone(
                    key=item.key,
                    output_path=item.output_path,
                    size=item.output_size or 0,
                    sha256=item.sha256 or "",
                    at=self._clock.monotonic(),
                )
            )
        else:
            await self._emit_failed(item)
        if item.stage_token is not None and self._stager is not None:
            await self._stager.unstage(item.stage_token)

    async def _advance(self, item: Item) -> None:
        """Run the step for the item's stage, retrying transient failures with a backoff.

        The step is looked up again on every try: a failed try may have moved the item into an intent
        stage (UPLOADING, STARTING), whose step reconciles the unknown outcome instead of re-sending.
        """
        failures = 0
        while True:
            if item.stage in TERMINAL_STAGES:
                return
            step = self._steps[item.stage]
            try:
                await step(self, item)
            except (ItemError, JournalError, IllegalTransitionError):
                raise
            except Exception as exc:
                failures += 1
                name = type(exc).__name__
                if failures > self._config.step_retries:
                    raise ItemError(name, _short(exc)) from exc
                delay = min(self._config.backoff * 2 ** (failures - 1), self._config.backoff_cap)
                log.info(
                    "step failed, retrying",
                    extra={
                        "item": item.key,
                        "stage": item.stage.value,
                        "error": name,
                        "delay": delay,
                    },
                )
                await self._clock.sleep(delay)
            else:
                return

    async def _step_queued(self, item: Item) -> None:
        if is_url(item.input):
            self._urls[item.key] = item.input
            await self._save(item, Stage.STAGED)
            return
        await self._stage_local(item)
        await self._save(item, Stage.STAGED, stage_token=item.stage_token)

    async def _stage_local(self, item: Item) -> None:
        if self._stager is None:
            raise ItemError("NoStager", "a local input needs a staging server (--stage-url)")
        async with self._lanes.staging:
            try:
                staged = await self._stager.stage(Path(item.key), token=item.stage_token)
            except OSError as exc:
                raise ItemError("InputUnreadable", f"{item.input}: {exc.strerror or exc}") from exc
        item.stage_token = staged.token
        if staged.token is not None:
            self._by_token[staged.token] = item.key
        self._urls[item.key] = staged.url

    async def _step_staged(self, item: Item) -> None:
        if is_url(item.input):
            self._urls[item.key] = item.input
        elif item.key not in self._urls:
            await self._stage_local(item)
        answered = False
        async with self._lanes.uploads:
            async with self._lanes.calls.hold(Priority.UPLOAD):
                with self._on_the_wire():
                    if self._stopping:
                        return  # admit nothing new; the checkpoint below ends the task
                    await self._save(item, Stage.UPLOADING)
                    try:
                        remote_id = await self._adapter.upload(
                            self._urls[item.key], notify_url=self._config.notify_url
                        )
                    except OutcomeUnknownError as exc:
                        log.warning(
                            "UploadMedia outcome unknown; reconciling",
                            extra={"item": item.key, "reason": exc.message},
                        )
                        answered = exc.answered
                    except ItemError:
                        raise
                    except Exception:
                        # certainly not sent (the adapter says so by raising neither of ours)
                        await self._save(item, Stage.STAGED, outcome="not-sent")
                        raise
                    else:
                        await self._uploaded(item, remote_id)
                        return
            if item.stage is Stage.UPLOADING:
                await self._reconcile_open_uploads([item], settle=not answered)
        await anyio.lowlevel.checkpoint()

    async def _uploaded(self, item: Item, remote_id: str, outcome: str | None = None) -> None:
        await self._save(item, Stage.UPLOADED, remote_id=remote_id, outcome=outcome)
        self._by_remote[remote_id] = item.key
        early = self._early.pop(remote_id, None)
        if early is not None:
            self._deliver(item.key, early)

    async def _step_uploading(self, item: Item) -> None:
        # only reached for an intent left open; live ones are reconciled in _step_staged
        async with self._lanes.uploads:
            await self._reconcile_open_uploads([item])

    async def _reconcile_open_uploads(
        self, items: list[Item], *, settle: bool = True
    ) -> list[RemoteMedia]:
        """Judge unanswered uploads from one listing; returns that listing."""
        if settle:
            await self._settle(items)
        media = await self._call(Priority.FINISH, self._adapter.sweep)
        owned = {i.remote_id for i in self._items.values() if i.remote_id is not None}
        ignore = set(await self._journal.get_meta("baseline") or ())
        candidates = upload_candidates(media, owned=owned, ignore=ignore)
        fetched = {}
        for item in items:
            seen = item.fetches
            if self._stager is not None and item.stage_token is not None:
                seen = max(seen, self._stager.fetches(item.stage_token) or 0)
            fetched[item.key] = seen > 0
        verdicts = judge_uploads(items, candidates, fetched=fetched)
        for item in items:
            resolution = verdicts[item.key]
            log.info(
                "UploadMedia reconciled",
                extra={
                    "item": item.key,
                    "verdict": resolution.verdict.value,
                    "why": resolution.reason,
                },
            )
            if resolution.verdict is Verdict.ADOPT:
                assert resolution.remote_id is not None  # noqa: S101 - ADOPT carries the id
                self._adopted.add(item.key)
                await self._uploaded(item, resolution.remote_id, outcome="adopted")
            elif resolution.verdict is Verdict.NOT_SENT:
                await self._save(item, Stage.STAGED, outcome="not-sent")
            else:
                await self._save(
                    item,
                    Stage.PARKED,
                    outcome="parked",
                    error_code="UploadOutcomeUnknown",
                    error_message=resolution.reason,
                )
        return media

    async def _settle(self, items: list[Item]) -> None:
        """Wait until each item's intent is `settle` seconds old (a request in flight is processed)."""
        newest = max(item.timings.get(item.stage.value, 0.0) for item in items)
        remaining = newest + self._config.settle - time.time()
        if remaining > 0:
            await self._clock.sleep(min(remaining, self._config.settle))

    async def _step_uploaded(self, item: Item) -> None:
        speculative = self._adapter.needs_start and self._adapter.start_when_predicted
        try:
            status = await self._wait_for(
                item, Phase.PROCESSING, on_due=self._try_start if speculative else None
            )
        except ItemError as exc:  # StartJob answered the media's own failure
            status = RemoteStatus(Phase.FAILED, error_code=exc.code, error_message=exc.message)
        if item.stage not in (Stage.UPLOADED, Stage.STARTING):
            return  # a start tried on the prediction moved it on
        if status.phase is Phase.FAILED and await self._was_adopted(item):
            # media adopted after a crash: its fetch most likely died with the old process
            await self._fail(item, status.error_code or "MediaFailed", status.error_message or "")
            await self._cleanup_failed(item)
            if not item.owns_remote:
                await self._requeue(item, "adopted media failed to ingest")
            return
        if status.phase is Phase.RESTORED:
            await self._save(item, Stage.RESTORED, restored_url=status.result_url)
        elif status.phase in (Phase.READY, Phase.RUNNING) and self._adapter.needs_start:
            await self._save(item, Stage.READY)
        else:
            self._raise_for(status)

    async def _was_adopted(self, item: Item) -> bool:
        """True when the item's media came from reconciling an upload whose answer was lost."""
        if item.key in self._adopted:
            return True
        intents = await self._journal.intents(item.key)
        uploads = [i for i in intents if i.kind == "upload"]
        return bool(uploads) and uploads[-1].outcome == "adopted"

    async def _step_ready(self, item: Item) -> None:
        await self._start(item)

    async def _try_start(self, item: Item) -> bool:
        """Start the job of media predicted ready; True when the item left UPLOADED."""
        await self._start(item)
        return item.stage is not Stage.UPLOADED

    async def _start(self, item: Item) -> None:
        """StartJob behind an intent; a lost answer is reconciled, a "not ready" returns the item."""
        assert item.remote_id is not None  # noqa: S101 - READY/UPLOADED items have media
        remote_id = item.remote_id
        before = item.stage
        answered = False
        async with self._lanes.calls.hold(Priority.FINISH):
            with self._on_the_wire():
                if self._stopping:
                    return  # no new jobs once stopping; the checkpoint below ends the task
                await self._save(item, Stage.STARTING)
                try:
                    await self._adapter.start(remote_id, notify_url=self._config.notify_url)
                except NotReadyError:  # not ready (yet, or after all): wait for the media again
                    await self._save(item, Stage.UPLOADED, outcome="not-ready")
                    return
                except OutcomeUnknownError as exc:
                    log.warning(
                        "StartJob outcome unknown; reconciling",
                        extra={"item": item.key, "reason": exc.message},
                    )
                    answered = exc.answered
                except ItemError:
                    raise
                except Exception:
                    await self._save(item, before, outcome="not-sent")
                    raise
                else:
                    await self._save(item, Stage.RUNNING, outcome="started")
                    return
        if item.stage is Stage.STARTING:
            await self._reconcile_start(item, settle=not answered)
        await anyio.lowlevel.checkpoint()

    async def _step_starting(self, item: Item) -> None:
        """A StartJob intent left open by an earlier run."""
        await self._reconcile_start(item, settle=True)

    async def _reconcile_start(self, item: Item, *, settle: bool) -> None:
        """An unanswered StartJob: one GetProgress (after the settle interval) decides."""
        assert item.remote_id is not None  # noqa: S101 - STARTING items have media
        if settle:
            await self._settle([item])
        status = await self._call(Priority.FINISH, self._adapter.status, item.remote_id)
        resolution = judge_start(status)
        log.info(
            "StartJob reconciled",
            extra={"item": item.key, "verdict": resolution.verdict.value, "why": resolution.reason},
        )
        if resolution.verdict is Verdict.STARTED:
            if status.phase is Phase.RESTORED:
                await self._save(
                    item, Stage.RESTORED, restored_url=status.result_url, outcome="started"
                )
            else:
                await self._save(item, Stage.RUNNING, outcome="started")
        elif resolution.verdict is Verdict.NOT_SENT:
            back = Stage.UPLOADED if status.phase is Phase.PROCESSING else Stage.READY
            await self._save(item, back, outcome="not-sent")
        elif resolution.verdict is Verdict.FAILED:
            self._raise_for(status)
        else:
            await self._save(
                item,
                Stage.PARKED,
                outcome="parked",
                error_code="StartOutcomeUnknown",
                error_message=resolution.reason,
            )

    async def _step_running(self, item: Item) -> None:
        status = await self._wait_for(item, Phase.RUNNING)
        if status.phase is Phase.RESTORED:
            await self._save(item, Stage.RESTORED, restored_url=status.result_url)
        else:
            self._raise_for(status)

    async def _step_restored(self, item: Item) -> None:
        async with self._lanes.downloads:
            await self._save(item, Stage.DOWNLOADING)
            await self._download(item)

    async def _step_downloading(self, item: Item) -> None:
        async with self._lanes.downloads:
            await self._download(item)

    async def _download(self, item: Item) -> None:
        if item.restored_url is None:
            raise ItemError("NoResult", "the service gave no restored file URL")
        dest = Path(item.output_path)
        last = [item.bytes_on_disk]

        def progress(done: int, total: int | None) -> None:
            last[0] = done
            self._emit_nowait(
                DownloadProgress(key=item.key, done=done, total=total, at=self._clock.monotonic())
            )

        try:
            path = await self._adapter.download(item.restored_url, dest, progress=progress)
        finally:
            if last[0] != item.bytes_on_disk and item.stage is Stage.DOWNLOADING:
                await self._journal.save(item, bytes_on_disk=last[0])
        size, digest = await anyio.to_thread.run_sync(_size_and_sha256, path)
        await self._save(
            item,
            Stage.DOWNLOADED,
            output_path=str(path),
            output_size=size,
            sha256=digest,
            bytes_on_disk=size,
        )

    async def _step_downloaded(self, item: Item) -> None:
        if not self._config.keep_remote and item.owns_remote:
            assert item.remote_id is not None  # noqa: S101 - owns_remote
            await self._call(Priority.FINISH, self._adapter.delete, item.remote_id)
            await self._save(item, Stage.DONE, remote_deleted=True)
        else:
            await self._save(item, Stage.DONE)

    _steps: Final[dict[Stage, Callable[[Runner, Item], Awaitable[None]]]] = {
        Stage.QUEUED: _step_queued,
        Stage.STAGED: _step_staged,
        Stage.UPLOADING: _step_uploading,
        Stage.UPLOADED: _step_uploaded,
        Stage.READY: _step_ready,
        Stage.STARTING: _step_starting,
        Stage.RUNNING: _step_running,
        Stage.RESTORED: _step_restored,
        Stage.DOWNLOADING: _step_downloading,
        Stage.DOWNLOADED: _step_downloaded,
    }

    def _raise_for(self, status: RemoteStatus) -> None:
        if status.phase is Phase.GONE:
            raise ItemError("MediaGone", "the service no longer knows this media")
        raise ItemError(
            status.error_code or "RemoteFailure",
            status.error_message or f"the service reports {status.state or status.phase.value}",
        )

    async def _fail(self, item: Item, code: str, message: str) -> None:
        log.warning("item failed", extra={"item": item.key, "error_code": code})
        if item.stage in TERMINAL_STAGES or item.stage is Stage.DOWNLOADED:
            # a DOWNLOADED item has its output; only its remote delete is pending (next run)
            await self._save(item, error_code=code, error_message=message)
        else:
            await self._save(item, Stage.FAILED, error_code=code, error_message=message)

    async def _cleanup_failed(self, item: Item) -> None:
        """Delete the media of a failed item (it is ours), unless remote media is kept."""
        if not self._needs_cleanup(item) or self._stopping:
            return
        assert item.remote_id is not None  # noqa: S101 - owns_remote
        try:
            await self._call(Priority.FINISH, self._adapter.delete, item.remote_id)
        except Exception as exc:
            log.warning(
                "could not delete the media of a failed item",
                extra={"item": item.key, "error": type(exc).__name__},
            )
            return
        await self._save(item, remote_deleted=True)

    # ------------------------------------------------------------------ waiting for the service

    async def _wait_for(
        self,
        item: Item,
        phase: Phase,
        *,
        on_due: Callable[[Item], Awaitable[bool]] | None = None,
    ) -> RemoteStatus:
        """Wait until the service reports the end of `phase` for the item (poller or callbacks).

        With `on_due`, a probe due for the item calls `on_due(item)` instead of asking the service
        (a start tried on the prediction); it returns True when the item left the phase.
        """
        mailbox = self._mail[item.key]
        ends = _ENDS[phase]
        began = self._clock.monotonic()
        timeout = self._config.phase_timeout
        self._planner.track(item.key, phase, began, size=item.size)
        self._wake_poller()
        try:
            while True:
                if mailbox.status is None:
                    # only wait on a fresh event when nothing arrived (news may come during on_due)
                    mailbox.event = anyio.Event()
                    await mailbox.event.wait()
                    continue
                status = mailbox.status
                mailbox.status = None
                if timeout is not None and self._clock.monotonic() - began > timeout:
                    raise ItemError(
                        "StageTimeout", f"still {phase.value} after {timeout:g} s; given up"
                    )
                if status is _DUE:
                    if on_due is not None:
                        moved = await on_due(item)
                        now = self._clock.monotonic()
                        if moved:
                            if item.stage is Stage.RUNNING:  # ready by now: learn the duration
                                self._planner.observe(item.key, RemoteStatus(Phase.RUNNING), now)
                            return RemoteStatus(Phase.UNKNOWN)
                        self._planner.observe(item.key, RemoteStatus(phase), now)
                else:
                    if status.phase in ends:
                        return status
                    if status.phase is phase:
                        self._emit_nowait(
                            ItemProgress(
                                key=item.key,
                                state=status.state,
                                progress=status.progress,
                                at=self._clock.monotonic(),
                            )
                        )
        finally:
            self._planner.untrack(item.key)

    def _deliver(self, key: str, status: RemoteStatus) -> None:
        if status is not _DUE:
            self._planner.observe(key, status, self._clock.monotonic())
        mailbox = self._mail.get(key)
        if mailbox is None:
            return
        mailbox.status = status
        mailbox.event.set()

    def _wake_poller(self) -> None:
        self._poll_wake.set()

    async def _poll_loop(self) -> None:
        async with anyio.create_task_group() as tg:
            while True:
                self._poll_wake = anyio.Event()
                now = self._clock.monotonic()
                budget = max(self._lanes.calls.slots // 2, 1) - self._probes_in_flight
                plan = self._planner.plan(now, max_probes=max(budget, 0))
                if plan.sweep:
                    self._probes_in_flight += 1
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
        wake = self._poll_wake
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
        try:
            item = self._items[key]
            if item.remote_id is None:
                return
            if self._adapter.start_when_predicted and item.stage in (
                Stage.UPLOADED,
                Stage.STARTING,
            ):
                if item.stage is Stage.UPLOADED:  # the item tries StartJob itself, no GetProgress
                    self._deliver(key, _DUE)
                return  # (STARTING: a try is on the wire; its answer is the observation)
            try:
                status = await self._call(Priority.POLL, self._adapter.status, item.remote_id)
            except Exception as exc:
                log.info("probe failed", extra={"item": key, "error": type(exc).__name__})
                return
            self._deliver(key, status)
        finally:
            self._probes_in_flight -= 1
            self._wake_poller()

    async def _sweep(self) -> None:
        try:
            now = self._clock.monotonic()
            try:
                media = await self._call(Priority.POLL, self._adapter.sweep)
            except Exception as exc:
                log.info("sweep failed", extra={"error": type(exc).__name__})
                return
            restored = []
            for entry in media:
                key = self._by_remote.get(entry.remote_id)
                if key is None or entry.result_url is None or key not in self._planner:
                    continue
                restored.append(key)
                self._deliver(key, RemoteStatus(Phase.RESTORED, result_url=entry.result_url))
            self._planner.observe_sweep(now, restored)
        finally:
            self._probes_in_flight -= 1
            self._wake_poller()

    # ------------------------------------------------------------------ calls, commits, events

    @contextmanager
    def _on_the_wire(self) -> Iterator[None]:
        """Shield a call and the commit of its answer from `stop()` (not from `abort()`)."""
        with anyio.CancelScope(shield=True) as scope:
            self._inflight.add(scope)
            try:
                if self._aborted:
                    scope.cancel()
                yield
            finally:
                self._inflight.discard(scope)

    async def _call(self, priority: Priority, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """One API call through the priority gate; idempotent calls need no shield."""
        async with self._lanes.calls.hold(priority):
            return await fn(*args)

    async def _save(self, item: Item, stage: Stage | None = None, **changes: Any) -> None:
        old = await self._journal.save(item, stage, **changes)
        if stage is not None and stage is not old:
            await self._emit(
                StageChanged(key=item.key, old=old, new=stage, at=self._clock.monotonic())
            )

    async def _emit(self, event: Event) -> None:
        send = self._send
        if send is None:
            return
        if self._stopping:  # nobody may be reading any more: never block a stop on the stream
            self._emit_nowait(event)
            return
        try:
            await send.send(event)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._send = None  # nobody listens any more; the batch goes on

    def _emit_nowait(self, event: Event) -> None:
        """Send a progress event if there is room; progress is lossy, transitions are not."""
        send = self._send
        if send is None:
            return
        try:
            send.send_nowait(event)
        except anyio.WouldBlock:
            pass
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._send = None

    async def _emit_failed(self, item: Item) -> None:
        await self._emit(
            ItemFailed(
                key=item.key,
                error_code=item.error_code or "Unknown",
                error_message=item.error_message or "",
                parked=item.stage is Stage.PARKED,
                at=self._clock.monotonic(),
            )
        )


# ---------------------------------------------------------------------- helpers: pure, or run in a thread


def input_key(text: str) -> str:
    """The journal key of an input: the URL as given, or the absolute path of a local file."""
    if is_url(text):
        return text
    return str(Path(text).expanduser().resolve())


def _base_name(text: str) -> str:
    if is_url(text):
        tail = text.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return tail or "media"
    return Path(text).name


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def _unique_path(out_dir: Path, name: str, taken: set[str]) -> Path:
    """`out_dir/name` made safe and unique among `taken` and files already there."""
    safe = _UNSAFE.sub("_", name).strip(" .") or "media"
    stem, dot, ext = safe.rpartition(".")
    if not dot:
        stem, ext = safe, ""
    candidate = out_dir / safe
    n = 2
    while str(candidate) in taken or candidate.exists():
        candidate = out_dir / (f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}")
        n += 1
    return candidate


def _missing_outputs(items: list[Item]) -> set[str]:
    missing = set()
    for item in items:
        try:
            size = Path(item.output_path).stat().st_size
        except OSError:
            missing.add(item.key)
            continue
        if item.output_size is not None and size != item.output_size:
            missing.add(item.key)
    return missing


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
