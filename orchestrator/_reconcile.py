"""Unknown outcomes: deciding what an UploadMedia or StartJob did when its answer was lost.

An outcome is unknown after a crash between an intent and its answer, or when the call failed after the
request may have reached the service (`request_sent=True`, a 5xx). The call is never simply repeated: that
could make a second job (money) or orphaned media. The evidence, in order:

**StartJob** (the item's file_id is known). After a *settle* interval (longer than the service's request
timeout, so a request still in flight has been processed), one GetProgress: a job state or a restored file
proves the job started; media still `READY` proves it did not (start again, with a new intent); a failure
is the item's failure; anything else is ambiguous, and the item is parked for a person.

**UploadMedia** (the file_id is what we lack). After the settle interval, one ListMedia. Media on the
account that the journal does not own, and that was not there when the run started (the *baseline*,
taken once per run after earlier intents were settled), are *candidates*:
- no candidate: nothing was created. If the staging server's access log shows the service fetched the
  file, that contradicts it, so the item is parked; otherwise the upload never happened (upload again);
- one open upload and one candidate: it is ours (adopt it). Uploads run one at a time by default
  (`Lanes.uploads`), so a crash leaves at most one open upload and this is the usual case;
- anything else (more candidates than open uploads, or several of each): ambiguous. The items are parked
  and the candidates are left alone: the batch never deletes media it cannot prove it owns.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from enum import StrEnum

import attrs

from ._service import Phase, RemoteMedia, RemoteStatus
from ._stages import Item

__all__ = ["Resolution", "Verdict", "judge_start", "judge_uploads", "upload_candidates"]

log = logging.getLogger("orchestrator")


class Verdict(StrEnum):
    """What reconciliation concluded."""

    NOT_SENT = "not-sent"  # the call had no effect: make it again (a new intent)
    ADOPT = "adopt"  # UploadMedia took effect: `remote_id` is the item's media
    STARTED = "started"  # StartJob took effect
    FAILED = "failed"  # the service reports the item failed
    PARKED = "parked"  # the evidence is ambiguous: a person decides


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
    items: Sequence[Item], candidates: Sequence[str], *, fetched: dict[str, bool]
) -> dict[str, Resolution]:
    """The verdict for each item with an open upload intent, given the candidates and fetch evidence."""
    if not items:
        return {}
    if not candidates:
        verdicts = {}
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
    if len(items) == 1 and len(candidates) == 1:
        return {items[0].key: Resolution(Verdict.ADOPT, remote_id=candidates[0])}
    reason = (
        f"{len(candidates)} unknown media on the account for {len(items)} unanswered uploads; "
        f"candidates: {', '.join(sorted(candidates))}"
    )
    return {item.key: Resolution(Verdict.PARKED, reason=reason) for item in items}


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
