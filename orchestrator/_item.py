"""The item step machine: one step per stage, walked by one task per item until the item is terminal.

Each step does at most one remote effect and commits its result through the `Gate` before the next one, so a
crash anywhere leaves the item in a stage whose step, run again, is safe:

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

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._attribution import UploadCallbacks
from ._effects import Gate, StaleItemError
from ._events import ItemDone, ItemFailed
from ._inputs import EMPTY_INPUT_CODE, empty_input_problem
from ._journal import JournalError
from ._orphans import OrphanSweeper
from ._reconcile import Reconciler, Resolution, Verdict
from ._scheduler import Priority
from ._seal import UploadSeal
from ._service import (
    BatchFatalError,
    ItemError,
    NotReadyError,
    OutcomeUnknownError,
    Phase,
    Prechecker,
    RemoteMedia,
    RemoteStatus,
    ServiceAdapter,
    Source,
    Starter,
    StartRefusedError,
    Uploaded,
    starter,
    starts_on_prediction,
)
from ._stages import TERMINAL_STAGES, IllegalTransitionError, Item, Stage
from ._staging import Stager, is_url
from ._transfer import Transfer, Unfinished, raise_for
from ._watch import Watcher

if TYPE_CHECKING:
    from _clientkit._clock import Clock

    from ._config import RunnerConfig

__all__ = ["ItemMachine", "UploadGivenUpError"]

log = logging.getLogger("orchestrator")

# an input whose ingest fails on what may be our side is uploaded at most this many times in all
_CRASH_UPLOADS: Final = 3
# a StartJob refused while the media is ready fails its item on this refusal (a real refusal of the job)
_START_REFUSALS: Final = 3


class UploadGivenUpError(Exception):
    """An unanswered upload was given up (`ItemMachine._give_up_upload`): a transient failure, so the
    step is retried after a backoff, and a service that never answers leaves the item resumable."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key}: UploadMedia unanswered; the input goes up again under a new URL")


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
        self._urls: dict[str, Source] = {}
        self._adopted: set[str] = set()
        self._tokens: dict[str, str] = {}
        self._not_ready_codes: set[str] = set()  # learned: refusal codes that meant "not ready"
        self._refusals: dict[str, int] = {}  # refused starts of ready media, per item
        self._transfer = Transfer(adapter, gate, clock)
        self._callbacks = callbacks
        self._attributed: dict[
            str, str
        ] = {}  # staging token -> the media its upload callback named
        self._attribution = anyio.Event()  # set (and renewed) whenever a callback attributes media
        self._blind_busy = (
            False  # an upload the seal cannot keep apart is on the wire (one at a time)
        )
        self._turn_over = anyio.Event()  # set (and renewed) when such an upload ends
        self._seal = seal
        self._orphans = OrphanSweeper(
            adapter,
            gate,
            items if items is not None else {},
            clock=clock,
            settle=config.settle,
            attributed=lambda: self._attributed,
        )
        if callbacks is not None:
            callbacks.set_hook(self._upload_callback)

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

    def key_of_token(self, token: str) -> str | None:
        """The item whose staged file has this token."""
        return self._tokens.get(token)

    async def admit_fetch(self, token: str) -> bool:
        """Wait until a fetch of `token` may be served (the seal); False: never serve it."""
        return self._seal is None or await self._seal.admit(token)

    def remember_token(self, item: Item) -> None:
        """Route the staging server's access records of the item's token to it."""
        if item.stage_token is not None:
            self._tokens[item.stage_token] = item.key

    def _upload_callback(self, token: str, remote_id: str, status: RemoteStatus) -> None:
        """The service called back about the upload staged under `token`: it created `remote_id`."""
        if token not in self._tokens:
            log.info("a callback for no input of this batch; ignored")
            return
        known = self._attributed.get(token)
        if known is not None and known != remote_id:
            log.warning("two media named for one upload; keeping the first", extra={"token": token})
            return
        if known is None:
            self._attributed[token] = remote_id
            self._attribution.set()
            self._attribution = anyio.Event()
        self._watcher.notify(remote_id, status)

    def _callback_url(self, item: Item) -> str | None:
        """The item's own upload callback URL (None: no callback can attribute its upload)."""
        if self._callbacks is None or item.stage_token is None or not item.is_local:
            return None
        return self._callbacks.url_for(item.stage_token)

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

    async def _step_queued(self, item: Item) -> None:
        empty = empty_input_problem(item.input, item.size) if item.is_local else None
        if empty is not None:
            raise ItemError(EMPTY_INPUT_CODE, empty)
        if is_url(item.input):
            self._urls[item.key] = item.input
            await self._gate.save(item, Stage.STAGED)
            return
        await self._stage_local(item)
        await self._gate.save(item, Stage.STAGED, stage_token=item.stage_token)

    async def _stage_local(self, item: Item) -> None:
        if self._stager is None:
            raise ItemError("NoStager", "a local input needs a staging server (--stage-url)")
        async with self._gate.lanes.staging:
            try:
                staged = await self._stager.stage(Path(item.key), token=item.stage_token)
            except OSError as exc:
                raise ItemError("InputUnreadable", f"{item.input}: {exc.strerror or exc}") from exc
        item.stage_token = staged.token
        self.remember_token(item)
        self._urls[item.key] = staged.source

    async def _step_staged(self, item: Item) -> None:
        if is_url(item.input):
            self._urls[item.key] = item.input
        elif item.key not in self._urls:
            await self._stage_local(item)
        if await self._already_there(item):
            return
        answered = False
        gate = self._gate
        callback = self._callback_url(item)
        token = self._sealed_token(item)
        async with gate.lanes.uploads, self._upload_turn(token):
            async with gate.lanes.calls.hold(Priority.UPLOAD):
                with gate.on_the_wire():
                    if gate.stopping:
                        return  # admit nothing new; the checkpoint below ends the task
                    await gate.save(item, Stage.UPLOADING, stage_token=item.stage_token)
                    if token is not None and self._seal is not None:
                        self._seal.expect(token)
                    try:
                        result = await gate.call(
                            None,
                            self._adapter.upload,
                            self._urls[item.key],
                            notify_url=callback or self.config.notify_url,
                        )
                    except OutcomeUnknownError as exc:
                        log.warning(
                            "UploadMedia outcome unknown; reconciling",
                            extra={"item": item.key, "reason": exc.message},
                        )
                        answered = exc.answered
                    except ItemError:
                        self._unseal(token)  # refused: no media was made
                        raise
                    except Exception:
                        # certainly not sent (the adapter says so by raising neither of ours)
                        self._unseal(token)
                        await gate.save(item, Stage.STAGED, outcome="not-sent")
                        raise
                    else:
                        await self._uploaded(item, result)
                        if token is not None and self._seal is not None:
                            self._seal.answered(token)
                        return
            if item.stage is Stage.UPLOADING:
                if self._unserved(item) and self._unseal(token):
                    await self._give_up_upload(item)
                    raise UploadGivenUpError(item.key)
                await self._reconcile_uploads([item], settle=not answered)
        await anyio.lowlevel.checkpoint()

    def _sealed_token(self, item: Item) -> str | None:
        """The staging token whose fetches the seal holds during the item's upload (None: none)."""
        if self._seal is None or not item.is_local or is_url(item.input):
            return None
        return item.stage_token

    @contextlib.asynccontextmanager
    async def _upload_turn(self, token: str | None) -> AsyncIterator[None]:
        """One upload at a time, unless this one may share the wire (`_may_overlap`); one waiting for
        its turn goes as soon as the seal allows overlap (learned from the upload before it)."""
        while not self._may_overlap(token):
            if not self._blind_busy:
                self._blind_busy = True
                try:
                    yield
                finally:
                    self._blind_busy = False
                    self._turn_over.set()
                    self._turn_over = anyio.Event()
                return
            await self._turn_over.wait()
        yield

    def _may_overlap(self, token: str | None) -> bool:
        """True when this upload may share the wire: sealed with a service that answers before it
        fetches, or content-addressed (the input itself names its media)."""
        if isinstance(self._adapter, Prechecker):
            return True
        return token is not None and self._seal is not None and self._seal.shares_the_wire

    def _unseal(self, token: str | None) -> bool:
        """Never serve `token` again (its upload is over without an answer); False when a fetch of
        it was already served while the upload was open."""
        return token is None or self._seal is None or self._seal.refuse(token)

    def _unserved(self, item: Item) -> bool:
        """True for an open upload of a sealed local input of which no byte was ever served: media it
        made (if any) can never be analysed, so the input may simply go up again under a new URL."""
        if self._sealed_token(item) is None or item.fetches:
            return False
        seen = self._stager.fetches(item.stage_token) if self._stager and item.stage_token else 0
        return not seen

    async def _give_up_upload(self, item: Item) -> None:
        """Forget an unserved upload: its token goes to the journal's lost uploads first (its media is
        swept as an orphan, `_orphans.py`), is never served again, and the input goes up anew."""
        token = item.stage_token
        assert token is not None  # noqa: S101 - only sealed (staged) uploads are given up
        await self._orphans.lose(token)
        if self._seal is not None:
            self._seal.refuse(token)
        if self._stager is not None:
            await self._stager.unstage(token)
        self._urls.pop(item.key, None)
        log.info("unanswered upload given up; uploading the input again", extra={"item": item.key})
        await self._gate.save(item, Stage.STAGED, stage_token=None, fetches=0, outcome="given-up")

    async def sweep_orphans(self) -> None:
        """Delete the orphans of given-up uploads, once no upload is open (the batch's end)."""
        if not await self._orphans.pending():
            return
        try:
            await self._orphans.sweep()
        except Exception as exc:  # the next run looks again
            log.warning("could not sweep the orphans of lost uploads: %s", type(exc).__name__)

    async def _already_there(self, item: Item) -> bool:
        """Ask a content-addressed service whether it has the input already; if so, nothing is sent.

        Before the item's first upload intent, media found there is someone else's (never deleted). After
        one, it is what our own unanswered upload created (the first precheck found nothing): ours.
        """
        if not isinstance(self._adapter, Prechecker):
            return False
        remote_id = await self._gate.call(
            Priority.UPLOAD, self._adapter.precheck, self._urls[item.key]
        )
        if remote_id is None:
            return False
        ours = any(i.kind == "upload" for i in await self._gate.intents(item.key))
        log.info(
            "already on the service: nothing to upload", extra={"item": item.key, "ours": ours}
        )
        await self._uploaded(item, Uploaded(remote_id, owned=ours))
        return True

    async def _uploaded(
        self, item: Item, result: str | Uploaded, outcome: str | None = None
    ) -> None:
        upload = result if isinstance(result, Uploaded) else Uploaded(result)
        await self._gate.save(
            item,
            Stage.UPLOADED,
            remote_id=upload.remote_id,
            remote_shared=not upload.owned,
            outcome=outcome,
        )
        self._watcher.bind(item, upload.remote_id)

    async def _restage(self, item: Item) -> None:
        """Serve a resumed item's input at its old URL again: the service may still fetch it (a rerun
        listening at the killed run's address), and then its media need not fail."""
        if item.is_local and item.stage_token is not None and item.key not in self._urls:
            with contextlib.suppress(ItemError):  # gone or unreadable: its ingest will tell
                await self._stage_local(item)

    async def _step_uploading(self, item: Item) -> None:
        # only reached for an intent left open; live ones are reconciled in _step_staged
        if self._unserved(item):
            await self._give_up_upload(item)  # its old URL is never served again
            return
        await self._restage(item)
        async with self._gate.lanes.uploads:
            await self._reconcile_uploads([item], wait=True)

    async def reconcile_open_uploads(
        self, items: list[Item], *, baseline: bool, listing: list[RemoteMedia] | None
    ) -> None:
        """Judge the uploads an earlier run left open, together (one listing); then take the baseline.

        Unserved ones (`_unserved`) are given up at once; the rest are judged from one listing.
        `listing` (the preflight's) serves as the baseline when no upload was left open. The old
        baseline stays while any upload is undecided or lost uploads' orphans wait to be swept: a new
        one would hide their media.
        """
        media = listing
        for item in [i for i in items if self._unserved(i)]:
            await self._give_up_upload(item)
        items = [i for i in items if i.stage is Stage.UPLOADING]
        if items:
            try:
                media = await self._reconcile_uploads(items, wait=False)
            except Exception as exc:  # each item retries it in its own task
                log.warning("reconciliation failed: %s", type(exc).__name__)
                return
            if any(item.stage is Stage.UPLOADING for item in items):
                return  # waiting for callbacks in their own tasks
        if baseline and not await self._orphans.pending():
            await self._reconciler.take_baseline(media)

    async def _reconcile_uploads(
        self, items: list[Item], *, settle: bool = True, wait: bool = True
    ) -> list[RemoteMedia]:
        """Judge unanswered uploads; with `wait`, look again while a callback may still decide them.

        Waiting ends at each callback or after the settle interval (another upload's answer may have
        made its media ours), and gives up after `config.callback_wait`: the items are then parked.
        """
        deadline = self._clock.monotonic() + self.config.callback_wait
        while True:
            attribution = self._attribution
            verdicts, media = await self._reconciler.uploads(
                items,
                settle=settle,
                attributed=self._attributed,
                callbacks_expected=self._callbacks is not None,
            )
            settle = False
            waiting = [i for i in items if verdicts[i.key].verdict is Verdict.WAIT]
            if waiting and wait and self._clock.monotonic() < deadline:
                await self._apply_upload_verdicts([i for i in items if i not in waiting], verdicts)
                items = waiting
                with anyio.move_on_after(self.config.settle):
                    await attribution.wait()
                continue
            await self._apply_upload_verdicts(items, verdicts)
            return media

    async def _apply_upload_verdicts(
        self, items: list[Item], verdicts: dict[str, Resolution]
    ) -> None:
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
                await self._gate.save(item, Stage.STAGED, outcome="not-sent")
            elif resolution.verdict is Verdict.WAIT and not self._waiting_gave_up(item):
                continue  # reconciled again in the item's own task
            else:
                await self._park(item, "UploadOutcomeUnknown", resolution.reason)

    def _waiting_gave_up(self, item: Item) -> bool:
        """True when an undecidable upload has waited past `callback_wait` (from its intent)."""
        began = self._gate.since(item, Stage.UPLOADING)
        return began is not None and self._clock.monotonic() - began > self.config.callback_wait

    # ------------------------------------------------------------------ analysis and job

    async def _step_uploaded(self, item: Item) -> None:
        await self._restage(item)
        speculative = starts_on_prediction(self._adapter)
        try:
            status = await self._watcher.wait_for(
                item, Phase.PROCESSING, on_due=self._try_start if speculative else None
            )
        except ItemError as exc:  # StartJob answered the media's own failure
            status = RemoteStatus(Phase.FAILED, error_code=exc.code, error_message=exc.message)
        if item.stage is not Stage.UPLOADED:
            return  # a start tried on the prediction moved it on
        if status.phase is Phase.FAILED and await self._ingest_lost(item):
            await self._upload_again(item, status)
        elif status.phase is Phase.RESTORED:
            await self._gate.save(item, Stage.RESTORED, restored_url=status.result_url)
        elif status.phase in (Phase.READY, Phase.RUNNING) and isinstance(self._adapter, Starter):
            await self._gate.save(item, Stage.READY)
        else:
            raise_for(status)

    async def _ingest_lost(self, item: Item) -> bool:
        """True when the media's ingest may have failed on our side, not because of the input.

        The service fetches a local input from our own staging server: from a killed process's server
        (media uploaded by an earlier process, or adopted after one) the fetch is lost for certain, and in
        this run a fetch cut by our server (a connection it closed) looks the same to the service. So an
        ingest failure of a staged local input is uploaded again, a bounded number of times
        (`_CRASH_UPLOADS` uploads in all); then it is the item's own failure.
        """
        if item.attempts + 1 >= _CRASH_UPLOADS:  # (attempts: the uploads made before this one)
            return False
        if item.key in self._adopted:
            return True
        if item.is_local and self._stager is not None:
            return True
        uploads = [i for i in await self._gate.intents(item.key) if i.kind == "upload"]
        return bool(uploads) and uploads[-1].outcome == "adopted"

    async def _upload_again(self, item: Item, status: RemoteStatus) -> None:
        """Let the failed media go (to the trash, deleted below) and upload the input again."""
        log.warning(
            "the media's ingest failed, maybe on our side (our staging server); uploading it again",
            extra={"item": item.key, "error_code": status.error_code},
        )
        remote_id = item.remote_id
        keep = self.config.keep_remote
        self._urls.pop(item.key, None)
        self._adopted.discard(item.key)
        await self._gate.save(
            item,
            Stage.STAGED,
            trash=None if keep else "ingest lost to our crash",
            remote_id=None,
            remote_shared=False,
            stage_token=None,  # a new URL: the old one's fetches are not evidence for the new upload
            fetches=0,
            attempts=item.attempts + 1,
        )
        if remote_id is not None and not keep:
            await self.delete_trash(remote_id)

    async def delete_trash(self, remote_id: str) -> None:
        """Delete media the batch let go of; a failure leaves it in the trash for the next run."""
        try:
            await self._gate.call(Priority.FINISH, self._adapter.delete, remote_id)
        except Exception as exc:
            log.warning("could not delete media in the trash: %s", type(exc).__name__)
            return
        await self._gate.untrash(remote_id)

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
        self._urls.pop(item.key, None)
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
