"""The upload side of the item machine: staging an input, UploadMedia under the seal, lost answers.

`Uploads` runs the QUEUED, STAGED and UPLOADING steps for `ItemMachine` (`_item.py`, whose module
docstring has the step table) and what they need: the staged URLs and their tokens, the service's
upload callbacks (`_attribution.py`), the seal that holds each input's fetch until its upload is
answered (`_seal.py`), the reconciliation of unanswered uploads (`_reconcile.py`), the orphans of
given-up ones (`_orphans.py`), and the ingest failures that may be ours (upload again).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel

from ._attribution import UploadCallbacks
from ._effects import Gate
from ._inputs import EMPTY_INPUT_CODE, empty_input_problem
from ._orphans import OrphanSweeper
from ._reconcile import Reconciler, Resolution, Verdict
from ._scheduler import Priority
from ._seal import UploadSeal
from ._service import (
    ItemError,
    OutcomeUnknownError,
    Prechecker,
    RemoteMedia,
    RemoteStatus,
    ServiceAdapter,
    Source,
    Uploaded,
)
from ._stages import Item, Stage
from ._staging import Stager, is_url
from ._watch import Watcher

if TYPE_CHECKING:
    from _clientkit._clock import Clock

    from ._config import RunnerConfig

__all__ = ["UploadGivenUpError", "Uploads"]

log = logging.getLogger("orchestrator")

# an input whose ingest fails on what may be our side is uploaded at most this many times in all
_CRASH_UPLOADS: Final = 3

Park = Callable[[Item, str, str], Awaitable[None]]
"""`park(item, code, reason)`: the machine parks an item for a person."""


class UploadGivenUpError(Exception):
    """An unanswered upload was given up (`Uploads._give_up_upload`): a transient failure, so the
    step is retried after a backoff, and a service that never answers leaves the item resumable."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key}: UploadMedia unanswered; the input goes up again under a new URL")


class Uploads:
    """Staging and uploading for the item machine (see the module docstring)."""

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
        park: Park,
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
        self._park = park
        self._urls: dict[str, Source] = {}
        self._adopted: set[str] = set()
        self._tokens: dict[str, str] = {}
        self._callbacks = callbacks
        self._attributed: dict[str, str] = {}  # staging token -> the media its callback named
        self._attribution = anyio.Event()  # set (and renewed) whenever a callback attributes media
        self._blind_busy = False  # an upload the seal cannot keep apart is on the wire
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

    def forget(self, item: Item) -> None:
        """Drop the item's staged URL (it is requeued: a new one is made)."""
        self._urls.pop(item.key, None)

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

    async def step_queued(self, item: Item) -> None:
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

    async def step_staged(self, item: Item) -> None:
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

    def _sealed_token(self, item: Item) -> str | None:
        """The staging token whose fetches the seal holds during the item's upload (None: none)."""
        if self._seal is None or not item.is_local or is_url(item.input):
            return None
        return item.stage_token

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

    async def restage(self, item: Item) -> None:
        """Serve a resumed item's input at its old URL again: the service may still fetch it (a rerun
        listening at the killed run's address), and then its media need not fail."""
        if item.is_local and item.stage_token is not None and item.key not in self._urls:
            with contextlib.suppress(ItemError):  # gone or unreadable: its ingest will tell
                await self._stage_local(item)

    async def step_uploading(self, item: Item) -> None:
        # only reached for an intent left open; live ones are reconciled in step_staged
        if self._unserved(item):
            await self._give_up_upload(item)  # its old URL is never served again
            return
        await self.restage(item)
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

    async def ingest_lost(self, item: Item) -> bool:
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

    async def upload_again(self, item: Item, status: RemoteStatus) -> None:
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
