"""The item step machine: one step per stage, walked by one task per item until the item is terminal.

Each step does at most one remote effect and commits its result through the `Gate` before the next one, so a
crash anywhere leaves the item in a stage whose step, run again, is safe (the upload steps, QUEUED to
UPLOADING, are `Uploads` in `_uploads.py`):

| stage | a rerun does | how it recognises an effect that already happened |
| --- | --- | --- |
| QUEUED, STAGED | stages the input, writes the upload intent, sends UploadMedia | nothing was sent yet |
| UPLOADING | a sealed input never served (journal: no fetch) goes up again under a new URL, and its orphan is swept at the batch's end (`_seal.py`, `_orphans.py`); otherwise reconciles: a callback to the item's own upload URL, else ListMedia after the settle interval | the old URL is never served again, so media the lost upload made can only fail; the media a callback names (adopted); else new media not in the baseline and not owned, when no other upload is open (adopted); a fetch in the staging log without media parks the item |
| UPLOADED | waits for the media (polls, callbacks) | GetProgress; an ingest failure of a staged local input may be ours (an earlier process's staging server died with it, or ours cut the fetch): the media goes to the trash and the item uploads again, at most three times in all |
| READY | writes the start intent, sends StartJob | nothing was sent yet |
| STARTING | reconciles: one GetProgress after the settle interval | a job state or a restored file proves the job started; media still ready proves it did not |
| RUNNING | waits for the job | GetProgress / ListMedia |
| RESTORED, DOWNLOADING | downloads, resuming the `.part` with Range + If-Range | the bytes on disk |
| DOWNLOADED | sends DeleteMedia (unless remote media is kept) | a delete of owned media answered "not found" is a delete |
| trash | DeleteMedia of media the batch let go of | answered "not found": deleted |
| DONE, FAILED (cleaned up), PARKED | nothing; the journal refuses any change | terminal is terminal |

Failures isolate: a definite failure (`ItemError`) fails the item with its reason; anything else is
transient and the step is retried after a backoff, a bounded number of times.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._attribution import UploadCallbacks
from ._effects import Gate, StaleItemError
from ._events import ItemDone, ItemFailed
from ._journal import JournalError
from ._reconcile import Reconciler, Verdict
from ._scheduler import Priority
from ._seal import UploadSeal
from ._service import (
    BatchFatalError,
    ItemError,
    NotReadyError,
    OutcomeUnknownError,
    Phase,
    RemoteStatus,
    ServiceAdapter,
    Starter,
    StartRefusedError,
    starter,
    starts_on_prediction,
)
from ._stages import TERMINAL_STAGES, IllegalTransitionError, Item, Stage
from ._staging import Stager
from ._transfer import Transfer, Unfinished, raise_for
from ._uploads import Uploads
from ._watch import Watcher

if TYPE_CHECKING:
    from _clientkit._clock import Clock

    from ._config import RunnerConfig

__all__ = ["ItemMachine"]

log = logging.getLogger("orchestrator")

# a StartJob refused while the media is ready fails its item on this refusal (a real refusal of the job)
_START_REFUSALS: Final = 3


class ItemMachine:
    """Drives one item at a time through its steps (see the module docstring for the table)."""

    def __init__(
        self,
        adapter: ServiceAdapter,
        gate: Gate,
        watcher: Watcher,
        reconciler: Reconciler,
        *,
        config: RunnerConfig,
        stager: Stager | None,
        clock: Clock,
        callbacks: UploadCallbacks | None = None,
        seal: UploadSeal | None = None,
        items: dict[str, Item] | None = None,
    ) -> None:
        self._adapter = adapter
        self._gate = gate
        self._watcher = watcher
        self._reconciler = reconciler
        self.config = config
        self._stager = stager
        self._clock = clock
        self._not_ready_codes: set[str] = set()  # learned: refusal codes that meant "not ready"
        self._refusals: dict[str, int] = {}  # refused starts of ready media, per item
        self._transfer = Transfer(adapter, gate, clock)
        self.uploads = Uploads(
            adapter,
            gate,
            watcher,
            reconciler,
            config=config,
            stager=stager,
            clock=clock,
            park=self._park,
            callbacks=callbacks,
            seal=seal,
            items=items,
        )

    # ------------------------------------------------------------------ policy

    def needs_cleanup(self, item: Item) -> bool:
        """A failed item whose media must still be deleted."""
        return item.stage is Stage.FAILED and item.owns_remote and not self.config.keep_remote

    def may_retry(self, item: Item) -> bool:
        """--retry-failed requeues a failed item once its media is deleted (or deliberately kept).

        Requeueing forgets the remote id, so doing it while the journal still owns undeleted media would
        orphan that media on the account.
        """
        return self.config.retry_failed and (not item.owns_remote or self.config.keep_remote)

    # ------------------------------------------------------------------ one item

    async def drive(self, item: Item) -> None:
        """Walk one item to a terminal stage (its `active` place is held by the caller and released here)."""
        try:
            try:
                if item.stage is Stage.FAILED:
                    await self.cleanup_failed(item)
                    if self.may_retry(item):
                        await self.requeue(item, "retry failed")
                while item.stage not in TERMINAL_STAGES:
                    await self._advance(item)
            except ItemError as exc:
                await self._fail(item, exc.code, exc.message)
            except Unfinished as exc:
                await self._leave_resumable(item, exc)
                return
            finally:
                self._gate.lanes.active.release()
            await self._finish(item)
        except StaleItemError as exc:
            log.warning("stale result dropped: %s", exc, extra={"item": item.key})

    async def _leave_resumable(self, item: Item, exc: Unfinished) -> None:
        """Record why the item stopped, keep its stage (and media), and say so."""
        log.warning("item left resumable", extra={"item": item.key, "error_code": exc.code})
        await self._gate.save(item, error_code=exc.code, error_message=exc.message)
        await self._gate.emit(
            ItemFailed(
                key=item.key,
                error_code=exc.code,
                error_message=f"{exc.message} (left as it stood: rerun the same command to resume)",
                resumable=True,
                at=self._clock.monotonic(),
            )
        )

    async def _finish(self, item: Item) -> None:
        if item.stage is Stage.FAILED:
            await self.cleanup_failed(item)
        if item.stage is Stage.DOWNLOADED:
            log.warning("remote media left for the next run to delete", extra={"item": item.key})
        elif item.stage is Stage.DONE:
            await self._gate.emit(
                ItemDone(
                    key=item.key,
                    output_path=item.output_path,
                    size=item.output_size or 0,
                    sha256=item.sha256 or "",
                    at=self._clock.monotonic(),
                )
            )
        else:
            await self.emit_failed(item)
        if item.stage_token is not None and self._stager is not None:
            await self._stager.unstage(item.stage_token)

    async def _advance(self, item: Item) -> None:
        """Run the step for the item's stage, retrying transient failures with a backoff.

        The step is looked up again on every try: a failed try may have moved the item into an intent
        stage (UPLOADING, STARTING), whose step reconciles the unknown outcome instead of re-sending.
        """
        failures = 0
        while item.stage not in TERMINAL_STAGES:
            step = self._steps[item.stage]
            try:
                await step(self, item)
            except (
                ItemError,
                JournalError,
                IllegalTransitionError,
                StaleItemError,
                BatchFatalError,
            ):
                raise
            except Exception as exc:
                failures += 1
                name = type(exc).__name__
                if failures > self.config.step_retries:
                    # never the item's failure: its media (maybe paid work) is kept for a rerun
                    raise Unfinished(name, _short(exc)) from exc
                delay = min(self.config.backoff * 2 ** (failures - 1), self.config.backoff_cap)
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

    # ------------------------------------------------------------------ upload

    # ------------------------------------------------------------------ analysis and job

    async def _step_queued(self, item: Item) -> None:
        await self.uploads.step_queued(item)

    async def _step_staged(self, item: Item) -> None:
        await self.uploads.step_staged(item)

    async def _step_uploading(self, item: Item) -> None:
        await self.uploads.step_uploading(item)

    async def _step_uploaded(self, item: Item) -> None:
        await self.uploads.restage(item)
        speculative = starts_on_prediction(self._adapter)
        try:
            status = await self._watcher.wait_for(
                item, Phase.PROCESSING, on_due=self._try_start if speculative else None
            )
        except ItemError as exc:  # StartJob answered the media's own failure
            status = RemoteStatus(Phase.FAILED, error_code=exc.code, error_message=exc.message)
        if item.stage is not Stage.UPLOADED:
            return  # a start tried on the prediction moved it on
        if status.phase is Phase.FAILED and await self.uploads.ingest_lost(item):
            await self.uploads.upload_again(item, status)
        elif status.phase is Phase.RESTORED:
            await self._gate.save(item, Stage.RESTORED, restored_url=status.result_url)
        elif status.phase in (Phase.READY, Phase.RUNNING) and isinstance(self._adapter, Starter):
            await self._gate.save(item, Stage.READY)
        else:
            raise_for(status)

    async def _step_ready(self, item: Item) -> None:
        await self._start(item)

    async def _try_start(self, item: Item) -> bool:
        """Start the job of media predicted ready; True when the item left UPLOADED."""
        await self._start(item)
        return item.stage is not Stage.UPLOADED

    async def _start(self, item: Item) -> None:
        """StartJob behind an intent; a lost answer is reconciled, a "not ready" returns the item."""
        remote_id = item.remote_id
        assert remote_id is not None  # noqa: S101 - READY/UPLOADED items have media
        before = item.stage
        answered = False
        refused: StartRefusedError | None = None
        gate = self._gate
        async with gate.lanes.calls.hold(Priority.FINISH):
            with gate.on_the_wire():
                if gate.stopping:
                    return  # no new jobs once stopping; the checkpoint below ends the task
                await gate.save(item, Stage.STARTING)
                try:
                    await gate.call(
                        None,
                        starter(self._adapter).start,
                        remote_id,
                        notify_url=self.config.notify_url,
                    )
                except NotReadyError:  # not ready (yet, or after all): wait for the media again
                    self._watcher.refusals_recognised()
                    await gate.save(item, Stage.UPLOADED, outcome="not-ready")
                    return
                except StartRefusedError as exc:
                    if exc.code in self._not_ready_codes and before is Stage.UPLOADED:
                        # a code this service used before for "not ready", as its state showed
                        self._watcher.refusals_recognised()
                        await gate.save(item, Stage.UPLOADED, outcome="not-ready")
                        return
                    refused = exc  # judged below from the media's state
                except OutcomeUnknownError as exc:
                    log.warning(
                        "StartJob outcome unknown; reconciling",
                        extra={"item": item.key, "reason": exc.message},
                    )
                    answered = exc.answered
                except ItemError:
                    # a definite refusal: no job was started, the intent is closed
                    await gate.save(item, before, outcome="refused")
                    raise
                except Exception:
                    await gate.save(item, before, outcome="not-sent")
                    raise
                else:
                    await gate.save(item, Stage.RUNNING, outcome="started")
                    return
        if item.stage is Stage.STARTING:
            settle = not answered and refused is None  # a refusal is an answer: read the state now
            await self._reconcile_start(item, settle=settle, refused=refused, before=before)
        await anyio.lowlevel.checkpoint()

    async def _step_starting(self, item: Item) -> None:
        """A StartJob intent left open by an earlier run."""
        await self._reconcile_start(item, settle=True)

    async def _reconcile_start(
        self,
        item: Item,
        *,
        settle: bool,
        refused: StartRefusedError | None = None,
        before: Stage = Stage.READY,
    ) -> None:
        """An unanswered (or refused) StartJob: one GetProgress decides what happened.

        A refusal of a start on failed media closes the intent first (no job was started), so that the
        failure is judged where the media is waited for (an ingest lost to our own crash is retried).
        """
        resolution, status = await self._reconciler.start(item, settle=settle)
        log.info(
            "StartJob reconciled",
            extra={"item": item.key, "verdict": resolution.verdict.value, "why": resolution.reason},
        )
        if refused is not None and resolution.verdict is Verdict.NOT_SENT:
            self._judge_refusal(item, refused, status)
        if resolution.verdict is Verdict.STARTED:
            if status.phase is Phase.RESTORED:
                await self._gate.save(
                    item, Stage.RESTORED, restored_url=status.result_url, outcome="started"
                )
            else:
                await self._gate.save(item, Stage.RUNNING, outcome="started")
        elif resolution.verdict is Verdict.NOT_SENT:
            back = Stage.UPLOADED if status.phase is Phase.PROCESSING else Stage.READY
            await self._gate.save(item, back, outcome="not-sent")
        elif resolution.verdict is Verdict.FAILED:
            if refused is not None and status.phase is Phase.FAILED:
                await self._gate.save(item, before, outcome="refused")
            raise_for(status)
        else:
            await self._park(item, "StartOutcomeUnknown", resolution.reason)

    def _judge_refusal(self, item: Item, refused: StartRefusedError, status: RemoteStatus) -> None:
        """A refused start on media with no job: not ready yet (learn the code), or a real refusal."""
        if status.phase is Phase.PROCESSING:
            self._not_ready_codes.add(refused.code)
            return
        count = self._refusals.get(item.key, 0) + 1
        self._refusals[item.key] = count
        if count >= _START_REFUSALS:
            raise ItemError(refused.code, refused.message)

    async def _step_running(self, item: Item) -> None:
        status = await self._watcher.wait_for(item, Phase.RUNNING)
        if status.phase is Phase.RESTORED:
            await self._gate.save(item, Stage.RESTORED, restored_url=status.result_url)
        else:
            raise_for(status)

    # ------------------------------------------------------------------ download and delete

    async def _step_restored(self, item: Item) -> None:
        async with self._gate.lanes.downloads:
            await self._gate.save(item, Stage.DOWNLOADING)
            await self._download(item)

    async def _step_downloading(self, item: Item) -> None:
        async with self._gate.lanes.downloads:
            await self._download(item)

    async def _download(self, item: Item) -> None:
        if item.restored_url is None:
            raise ItemError("NoResult", "the service gave no restored file URL")
        last = [item.bytes_on_disk]
        try:
            result = await self._transfer.fetch(item, item.restored_url, on_bytes=last)
        finally:
            if last[0] != item.bytes_on_disk and item.stage is Stage.DOWNLOADING:
                with anyio.CancelScope(shield=True):
                    await self._gate.save(item, bytes_on_disk=last[0])
        await self._gate.save(
            item,
            Stage.DOWNLOADED,
            restored_url=result.url,
            output_path=str(result.path),
            output_size=result.size,
            sha256=result.sha256,
            bytes_on_disk=result.size,
        )

    async def _step_downloaded(self, item: Item) -> None:
        if not self.config.keep_remote and item.owns_remote:
            assert item.remote_id is not None  # noqa: S101 - owns_remote
            await self._gate.call(Priority.FINISH, self._adapter.delete, item.remote_id)
            await self._gate.save(item, Stage.DONE, remote_deleted=True)
        else:
            await self._gate.save(item, Stage.DONE)

    _steps: Final[dict[Stage, Callable[[ItemMachine, Item], Awaitable[None]]]] = {
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

    # ------------------------------------------------------------------ ends

    async def requeue(self, item: Item, why: str) -> None:
        """Back to QUEUED (a rerun: output missing, or --retry-failed), forgetting the old remote run."""
        log.info("item requeued", extra={"item": item.key, "why": why})
        self.uploads.forget(item)
        await self._gate.save(
            item,
            Stage.QUEUED,
            reopen=True,
            stage_token=None,  # a new URL, so the old one's fetches are not evidence for the new upload
            remote_id=None,
            remote_deleted=False,
            remote_shared=False,
            restored_url=None,
            bytes_on_disk=0,
            output_size=None,
            sha256=None,
            error_code=None,
            error_message=None,
            fetches=0,
            attempts=item.attempts + 1,
        )

    async def _park(self, item: Item, code: str, reason: str) -> None:
        await self._gate.save(
            item, Stage.PARKED, outcome="parked", error_code=code, error_message=reason
        )

    async def _fail(self, item: Item, code: str, message: str) -> None:
        log.warning("item failed", extra={"item": item.key, "error_code": code})
        if item.stage in TERMINAL_STAGES or item.stage is Stage.DOWNLOADED:
            # a DOWNLOADED item has its output; only its remote delete is pending (next run)
            await self._gate.save(item, error_code=code, error_message=message)
        else:
            await self._gate.save(item, Stage.FAILED, error_code=code, error_message=message)

    async def cleanup_failed(self, item: Item) -> None:
        """Delete the media of a failed item (it is ours), unless remote media is kept."""
        if not self.needs_cleanup(item) or self._gate.stopping:
            return
        assert item.remote_id is not None  # noqa: S101 - owns_remote
        try:
            await self._gate.call(Priority.FINISH, self._adapter.delete, item.remote_id)
        except Exception as exc:
            log.warning(
                "could not delete the media of a failed item",
                extra={"item": item.key, "error": type(exc).__name__},
            )
            return
        await self._gate.save(item, remote_deleted=True)

    async def emit_failed(self, item: Item) -> None:
        """Tell the reader that the item failed (or is parked), with its reason."""
        await self._gate.emit(
            ItemFailed(
                key=item.key,
                error_code=item.error_code or "Unknown",
                error_message=item.error_message or "",
                parked=item.stage is Stage.PARKED,
                at=self._clock.monotonic(),
            )
        )


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
