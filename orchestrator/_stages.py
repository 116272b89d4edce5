"""The per-item stage machine: the stages, the one table of allowed transitions, and the item record.

An item walks `QUEUED -> STAGED -> UPLOADING -> UPLOADED -> READY -> STARTING -> RUNNING -> RESTORED ->
DOWNLOADING -> DOWNLOADED -> DONE`. `UPLOADING` and `STARTING` are *intents*: they are committed to the
journal before the non-idempotent call (UploadMedia, StartJob) is sent, and only the call's answer moves the
item on. An item found in one of them after a crash has an unknown outcome and goes to reconciliation
(`_reconcile.py`), never straight back to the call. A service without a separate "start" step (MediaCrush)
goes `UPLOADED -> RESTORED` directly.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import attrs

__all__ = [
    "ACTIVE_STAGES",
    "INTENT_STAGES",
    "TERMINAL_STAGES",
    "TRANSITIONS",
    "IllegalTransitionError",
    "Item",
    "Stage",
    "check_transition",
]


class Stage(StrEnum):
    """Where an item stands; the values are what the journal stores."""

    QUEUED = "queued"
    STAGED = "staged"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    READY = "ready"
    STARTING = "starting"
    RUNNING = "running"
    RESTORED = "restored"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    DONE = "done"
    FAILED = "failed"
    PARKED = "parked"


_S = Stage

# Every allowed move, and nothing else. A move to FAILED is allowed from every non-terminal stage.
TRANSITIONS: Final[dict[Stage, frozenset[Stage]]] = {
    _S.QUEUED: frozenset({_S.STAGED, _S.FAILED}),
    # UPLOADED straight from STAGED: the service already had the input (a precheck), nothing was sent
    _S.STAGED: frozenset({_S.UPLOADING, _S.UPLOADED, _S.FAILED}),
    # the answer to UploadMedia; or reconciliation: never arrived (STAGED), ambiguous (PARKED)
    _S.UPLOADING: frozenset({_S.UPLOADED, _S.STAGED, _S.FAILED, _S.PARKED}),
    # STARTING straight from UPLOADED: a StartJob tried when the media is *predicted* ready
    # STAGED: the ingest failed because our own crash cut the service's fetch: upload again
    _S.UPLOADED: frozenset({_S.READY, _S.STARTING, _S.RESTORED, _S.STAGED, _S.FAILED}),
    _S.READY: frozenset({_S.STARTING, _S.FAILED}),
    # the answer to StartJob; "not ready yet" (UPLOADED); or reconciliation: not started (READY or
    # UPLOADED), ambiguous (PARKED)
    _S.STARTING: frozenset({_S.RUNNING, _S.READY, _S.UPLOADED, _S.RESTORED, _S.FAILED, _S.PARKED}),
    _S.RUNNING: frozenset({_S.RESTORED, _S.FAILED}),
    _S.RESTORED: frozenset({_S.DOWNLOADING, _S.FAILED}),
    _S.DOWNLOADING: frozenset({_S.DOWNLOADED, _S.FAILED}),
    _S.DOWNLOADED: frozenset({_S.DONE}),
    # a rerun finds the output gone (DONE -> QUEUED) or is told to retry failures (FAILED -> QUEUED)
    _S.DONE: frozenset({_S.QUEUED}),
    _S.FAILED: frozenset({_S.QUEUED}),
    # a parked item waits for a person; the engine never moves it
    _S.PARKED: frozenset(),
}

TERMINAL_STAGES: Final = frozenset({_S.DONE, _S.FAILED, _S.PARKED})
INTENT_STAGES: Final = frozenset({_S.UPLOADING, _S.STARTING})
# stages in which the item may own media on the account
ACTIVE_STAGES: Final = frozenset(
    {
        _S.UPLOADING,
        _S.UPLOADED,
        _S.READY,
        _S.STARTING,
        _S.RUNNING,
        _S.RESTORED,
        _S.DOWNLOADING,
        _S.DOWNLOADED,
    }
)


class IllegalTransitionError(RuntimeError):
    """A move the transition table does not allow: a bug in the engine, never a remote failure."""


def check_transition(old: Stage, new: Stage) -> None:
    """Raise `IllegalTransitionError` unless `old -> new` is in the table (staying put is allowed)."""
    if old is not new and new not in TRANSITIONS[old]:
        raise IllegalTransitionError(f"illegal stage transition {old.value} -> {new.value}")


@attrs.define(eq=False)
class Item:
    """One input of the batch and everything the journal knows about it.

    Attributes:
        key: the item's identity in the journal (an absolute path or the URL).
        seq: position in the batch (admission order).
        input: the input as the user gave it.
        output_path: where the restored file goes (decided once, kept across reruns).
        stage: where the item stands.
        size: size of a local input in bytes (None for URLs).
        spec_fingerprint: fingerprint of the job spec the item runs under.
        stage_token: the staging server's unguessable token for a local input.
        remote_id: the service's id (Recuro file_id), once known.
        remote_deleted: the remote media was deleted (by us).
        remote_shared: the remote media was on the service before the batch (not ours to delete).
        restored_url: where the restored file can be downloaded.
        bytes_on_disk: bytes of the output already on disk (a `.part` while downloading).
        output_size: size of the finished output.
        sha256: checksum of the finished output.
        attempts: how many times the item went through the pipeline (reruns of failures count).
        error_code: the reason of the last failure (a server error code or our own).
        error_message: a human-readable message for `error_code`.
        fetches: how many times the service fetched the staged URL (staging access log).
        timings: wall-clock time at which each stage was entered (seconds since the epoch).
    """

    key: str
    seq: int
    input: str
    output_path: str
    stage: Stage = Stage.QUEUED
    size: int | None = None
    spec_fingerprint: str = ""
    stage_token: str | None = None
    remote_id: str | None = None
    remote_deleted: bool = False
    remote_shared: bool = False
    restored_url: str | None = None
    bytes_on_disk: int = 0
    output_size: int | None = None
    sha256: str | None = None
    attempts: int = 0
    error_code: str | None = None
    error_message: str | None = None
    fetches: int = 0
    timings: dict[str, float] = attrs.Factory(dict)

    @property
    def is_local(self) -> bool:
        """True when the input is a local file that must be staged."""
        return not self.input.lower().startswith(("http://", "https://"))

    @property
    def owns_remote(self) -> bool:
        """True when the item has media on the account that the batch must eventually delete."""
        return self.remote_id is not None and not self.remote_deleted and not self.remote_shared
