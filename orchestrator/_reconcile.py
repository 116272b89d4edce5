"""Unknown outcomes: deciding what an UploadMedia or StartJob did when its answer was lost.

An outcome is unknown after a crash between an intent and its answer, or when the call failed after the
request may have reached the service (`request_sent=True`, a 5xx). The call is never simply repeated: that
could make a second job (money) or orphaned media. The evidence, in order:

**StartJob** (the item's file_id is known). After a *settle* interval (longer than the service's request
timeout, so a request still in flight has been processed), one GetProgress: a job state or a restored file
proves the job started; media still `READY` proves it did not (start again, with a new intent); a failure
is the item's failure; anything else is ambiguous, and the item is parked for a person.

**UploadMedia** (the file_id is what we lack). A sealed staged input of which no byte was served is not
judged here: it goes up again (`_seal.py`, `ItemMachine._give_up_upload`). Otherwise, after the settle
interval, one ListMedia. Media on the
account that the journal does not own, and that was not there when the run started (the *baseline*,
taken once per run after earlier intents were settled), are *candidates*:
- no candidate: nothing was created. If the staging server's access log shows the service fetched the
  file, that contradicts it, so the item is parked; otherwise the upload never happened (upload again);
- a callback for the item's own upload URL names its media (`_attribution.py`): adopt that one;
- one open upload, one candidate, and no other upload open anywhere: it is ours (adopt it). Uploads the
  seal cannot keep apart run one at a time, so this settles them;
- anything else (more candidates than open uploads, or several of each): while a callback may still come
  (or another upload is still open), wait and look again; then it is ambiguous. The items are parked and
  the candidates are left alone: the batch never deletes media it cannot prove it owns.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

import attrs

from ._scheduler import Priority
from ._service import Phase, RemoteMedia, RemoteStatus, ServiceAdapter, list_media
from ._stages import Item, Stage

if TYPE_CHECKING:
    from _clientkit._clock import Clock

    from ._effects import Gate
    from ._staging import Stager

__all__ = [
    "Reconciler",
    "Resolution",
    "Verdict",
    "judge_start",
    "judge_uploads",
    "upload_candidates",
]

log = logging.getLogger("orchestrator")


class Verdict(StrEnum):
    """What reconciliation concluded."""

    NOT_SENT = "not-sent"  # the call had no effect: make it again (a new intent)
    ADOPT = "adopt"  # UploadMedia took effect: `remote_id` is the item's media
    STARTED = "started"  # StartJob took effect
    FAILED = "failed"  # the service reports the item failed
    PARKED = "parked"  # the evidence is ambiguous: a person decides
    WAIT = (
        "wait"  # not yet decidable: a callback may still name the media, or another upload is open
    )


@attrs.frozen
class Resolution:
    """A verdict with its details: the adopted id, the status seen, or the reason for parking."""

    verdict: Verdict
    remote_id: str | None = None
    status: RemoteStatus | None = None
    reason: str = ""


def upload_candidates(
    media: Sequence[RemoteMedia], *, owned: Collection[str], ignore: Collection[str]
) -> list[str]:
    """Ids on the account that the journal does not own and that are not known to be someone else's."""
    return [m.remote_id for m in media if m.remote_id not in owned and m.remote_id not in ignore]


def judge_uploads(
    items: Sequence[Item],
    candidates: Sequence[str],
    *,
    fetched: dict[str, bool],
    attributed: Mapping[str, str] | None = None,
    open_elsewhere: bool = False,
    callbacks_expected: bool = False,
) -> dict[str, Resolution]:
    """The verdict for each item with an open upload intent, given the candidates and the evidence.

    `fetched` says, by item key, whether the service was seen fetching the staged file; an item missing
    from it (an input never staged) counts as not fetched. `attributed` maps an item's key to the media
    its own upload callback named; `open_elsewhere` says an upload of another item is still open (its
    media may be among the candidates); `callbacks_expected` that the items' uploads carried callback
    URLs, so waiting can still attribute the candidates.
    """
    if not items:
        return {}
    verdicts: dict[str, Resolution] = {}
    remaining = list(candidates)
    unknown = []
    for item in items:
        named = (attributed or {}).get(item.key)
        if named is None:
            unknown.append(item)
            continue
        verdicts[item.key] = Resolution(
            Verdict.ADOPT, remote_id=named, reason="the service's callback for this upload names it"
        )
        if named in remaining:
            remaining.remove(named)
    if not unknown:
        return verdicts
    items, candidates = unknown, remaining
    if not candidates:
        for item in items:
            if fetched.get(item.key, False):
                verdicts[item.key] = Resolution(
                    Verdict.PARKED,
                    reason="the service fetched the staged file but no new media is on the account",
                )
            else:
                verdicts[item.key] = Resolution(
                    Verdict.NOT_SENT, reason="no new media on the account and no fetch of the file"
                )
        return verdicts
    if len(items) == 1 and len(candidates) == 1 and not open_elsewhere:
        verdicts[items[0].key] = Resolution(Verdict.ADOPT, remote_id=candidates[0])
        return verdicts
    reason = (
        f"{len(candidates)} unknown media on the account for {len(items)} unanswered uploads; "
        f"candidates: {', '.join(sorted(candidates))}"
    )
    verdict = Verdict.WAIT if callbacks_expected or open_elsewhere else Verdict.PARKED
    verdicts.update({item.key: Resolution(verdict, reason=reason) for item in items})
    return verdicts


def judge_start(status: RemoteStatus) -> Resolution:
    """The verdict for an unanswered StartJob, from one GetProgress after the settle interval."""
    if status.phase in (Phase.RUNNING, Phase.RESTORED):
        return Resolution(Verdict.STARTED, status=status)
    if status.phase in (Phase.READY, Phase.PROCESSING):
        # no job can start on unready media, so PROCESSING also proves none did
        return Resolution(Verdict.NOT_SENT, status=status, reason="no job on the media")
    if status.phase in (Phase.FAILED, Phase.GONE):
        return Resolution(Verdict.FAILED, status=status)
    return Resolution(
        Verdict.PARKED,
        status=status,
        reason=f"after StartJob the service reports {status.state or status.phase.value!r}",
    )


class Reconciler:
    """Reads the evidence for unknown outcomes (after the settle interval) and judges it.

    It only reads (ListMedia, GetProgress, the staging access log, the journal's baseline); the item
    machine applies its verdicts, so every move of an item stays in one place.
    """

    def __init__(
        self,
        adapter: ServiceAdapter,
        gate: Gate,
        items: Mapping[str, Item],
        *,
        stager: Stager | None,
        clock: Clock,
        settle: float,
    ) -> None:
        self._adapter = adapter
        self._gate = gate
        self._items = items
        self._stager = stager
        self._clock = clock
        self._settle = settle

    async def uploads(
        self,
        items: Sequence[Item],
        *,
        settle: bool = True,
        attributed: Mapping[str, str] | None = None,
        callbacks_expected: bool = False,
    ) -> tuple[dict[str, Resolution], list[RemoteMedia]]:
        """Verdicts for unanswered uploads from one listing; also returns that listing.

        `attributed` maps staging tokens to the media their upload callbacks named (every callback so
        far: media named for another item is not a candidate for these).
        """
        if settle:
            await self._wait_settled(items)
        media = await self._gate.call(Priority.FINISH, list_media(self._adapter))
        ignore = set(await self._gate.get_meta("baseline") or ())
        named = dict(attributed or {})
        keys = {item.key for item in items}
        mine = {
            item.key: named[item.stage_token]
            for item in items
            if item.stage_token is not None and item.stage_token in named
        }
        ignore |= set(named.values()) - set(mine.values())
        open_elsewhere = any(
            i.stage is Stage.UPLOADING and i.key not in keys for i in self._items.values()
        )
        candidates = upload_candidates(media, owned=self._owned(), ignore=ignore)
        fetched = {}
        for item in items:
            seen = item.fetches
            if self._stager is not None and item.stage_token is not None:
                seen = max(seen, self._stager.fetches(item.stage_token) or 0)
            fetched[item.key] = seen > 0
        verdicts = judge_uploads(
            items,
            candidates,
            fetched=fetched,
            attributed=mine,
            open_elsewhere=open_elsewhere,
            callbacks_expected=callbacks_expected,
        )
        return verdicts, media

    async def start(self, item: Item, *, settle: bool) -> tuple[Resolution, RemoteStatus]:
        """The verdict for an unanswered StartJob, from one GetProgress."""
        assert item.remote_id is not None  # noqa: S101 - STARTING items have media
        if settle:
            await self._wait_settled([item])
        status = await self._gate.call(Priority.FINISH, self._adapter.status, item.remote_id)
        return judge_start(status), status

    async def take_baseline(self, media: list[RemoteMedia] | None) -> None:
        """Remember the media already on the account (evidence for upload reconciliation).

        Taken after open uploads were reconciled (it would otherwise hide their media), reusing that
        reconciliation's listing when there was one.
        """
        if media is None:
            try:
                media = await self._gate.call(Priority.FINISH, list_media(self._adapter))
            except Exception as exc:
                log.warning("could not list the account's media: %s", type(exc).__name__)
                return
        owned = self._owned()
        baseline = sorted(m.remote_id for m in media if m.remote_id not in owned)
        await self._gate.set_meta("baseline", baseline)

    def _owned(self) -> set[str]:
        return {i.remote_id for i in self._items.values() if i.remote_id is not None}

    async def _wait_settled(self, items: Sequence[Item]) -> None:
        """Wait until each item's intent is `settle` seconds old (a request in flight is processed)."""
        newest = max(item.timings.get(item.stage.value, 0.0) for item in items)
        remaining = newest + self._settle - self._gate.wall()
        if remaining > 0:
            await self._clock.sleep(min(remaining, self._settle))
