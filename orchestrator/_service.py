"""What the engine needs from a service: the `ServiceAdapter` protocol, the job spec, and outcome types.

The engine (`_runner.py`) is service-agnostic: it drives items through the stage machine and asks the
adapter to do the remote work. An adapter raises exactly two kinds of exceptions the engine understands:

- `ItemError`: a definite failure of this item (the service refused, a job failed, an integrity error);
  the item is failed with `code` and `message`, and the rest of the batch goes on.
- `OutcomeUnknownError`: the call may or may not have taken effect (the request may have reached the service:
  `request_sent=True`, or a 5xx after sending). For UploadMedia and StartJob the engine reconciles; it never
  repeats the call blindly.

Anything else an adapter raises is treated as transient: the engine retries the step after a backoff, a
bounded number of times, then fails the item with the exception's class name as its code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

__all__ = [
    "BatchFatalError",
    "Describer",
    "ItemError",
    "JobSpec",
    "LinkExpiredError",
    "NotReadyError",
    "NotificationSink",
    "Notifier",
    "OutcomeUnknownError",
    "Phase",
    "Prechecker",
    "Preflight",
    "RemoteMedia",
    "RemoteStatus",
    "ServiceAdapter",
    "Source",
    "StartRefusedError",
    "Starter",
    "Sweeper",
    "Uploaded",
    "Webhook",
    "list_media",
    "starter",
    "starts_on_prediction",
    "sweep_phases",
]


class ItemError(Exception):
    """A definite failure of one item: `code` (a server error code or our own) and `message`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class NotReadyError(Exception):
    """The service refused a start because the media is not ready yet; the call had no effect."""


class LinkExpiredError(Exception):
    """The result's download link stopped working (401/403/410): fetch a fresh one and resume from disk."""


class BatchFatalError(Exception):
    """A failure no item can outlive: our disk is full, the credentials are refused, the host is unreachable.

    The batch stops at once, every item stays where it stood (none is failed), and the message names the
    cause and the fix; the same command resumes once it is fixed.
    """


class StartRefusedError(Exception):
    """The service refused a start with an error code the adapter cannot read (the API document names none).

    The engine decides what it meant from the media's state, never from the code: still processing (not
    ready: wait), a job on it (ours, started by an earlier try), failed, or ready (a real refusal of the job,
    which fails the item after a few tries).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class OutcomeUnknownError(Exception):
    """A non-idempotent call may or may not have taken effect; reconcile, never repeat blindly.

    `answered` is True when the service itself answered (an API 500): it has finished with the request,
    so its state can be read at once. Otherwise (a lost connection, a timeout, a proxy's 5xx) the request
    may still be processing, and reconciliation first waits out the settle interval.
    """

    def __init__(self, message: str, *, answered: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.answered = answered


class Phase(StrEnum):
    """Where a remote item stands, as the engine needs to know it."""

    PROCESSING = "processing"  # the service is ingesting / analysing the media
    READY = "ready"  # media ready; a job can be started
    RUNNING = "running"  # a job is queued or running
    RESTORED = "restored"  # the result can be downloaded
    FAILED = "failed"  # the service reports a failure (error_code / error_message)
    GONE = "gone"  # the service does not know the id (deleted, or never existed)
    UNKNOWN = "unknown"  # no news (e.g. a sweep that cannot see this phase)


@attrs.frozen
class RemoteStatus:
    """One observation of a remote item.

    Attributes:
        phase: where the item stands.
        fraction: progress through the current phase, 0.0-1.0 (for predicting completion), or None.
        state: the service's own state name (for display).
        progress: the service's own progress number (for display).
        result_url: where to download the result (phase RESTORED).
        error_code: the service's reason (phase FAILED).
        error_message: a readable message (phase FAILED).
    """

    phase: Phase
    fraction: float | None = None
    state: str = ""
    progress: float = 0.0
    result_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@attrs.frozen
class Uploaded:
    """What an upload made: the remote id, and whether the media is the batch's own to delete.

    `owned=False` when the service already had it (a content-addressed service answering "already
    uploaded" for someone else's copy): the batch then never deletes it.
    """

    remote_id: str
    owned: bool = True


@attrs.frozen
class RemoteMedia:
    """One entry of a sweep (Recuro ListMedia): an id on the account and its result URL if any."""

    remote_id: str
    result_url: str | None


@attrs.frozen
class JobSpec:
    """What every item of the batch is asked to become; a journal belongs to exactly one spec.

    Attributes:
        service: the service name ("recuro", "mediacrush").
        settings: JSON-able job settings (format, filters, scale...). Never credentials.
    """

    service: str
    settings: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces), the input of the fingerprint."""
        return json.dumps(
            {"service": self.service, "settings": dict(self.settings)},
            sort_keys=True,
            separators=(",", ":"),
        )

    @property
    def fingerprint(self) -> str:
        """A short stable hash of the spec."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


ProgressCallback = Callable[[int, int | None], object]


Source = Path | str
"""What an upload hands the service: a local file (a service that takes the bytes) or a URL it fetches."""


class ServiceAdapter(Protocol):
    """The core of a service, one small class per service: upload, status, download, delete.

    What only some services do is an optional capability the engine discovers with `isinstance`:
    `Starter` (a job to start once the media is ready), `Sweeper` (one listing of the whole account),
    `Notifier` (callbacks), `Prechecker` (content-addressed ids), `Preflight` (a first call that checks
    the credentials) and `Describer` (an output that stands for several files). An adapter without them
    is a service that processes what it is given by itself.

    Attributes:
        name: the service name.
    """

    name: str

    def job_spec(self) -> JobSpec:
        """The spec this adapter runs every item with (fingerprinted into the journal)."""
        ...

    def output_name(self, input_name: str) -> str:
        """The output file name for an input base name (e.g. the extension of the output format)."""
        ...

    async def upload(self, source: Source, *, notify_url: str | None) -> str | Uploaded:
        """Hand the service the input (a staged `Path` or a URL); the remote id (owned), or `Uploaded`.

        Not idempotent unless the service says so: an ambiguous failure is `OutcomeUnknownError`.
        """
        ...

    async def status(self, remote_id: str) -> RemoteStatus:
        """Observe one remote item. A service-side failure is phase FAILED, not an error."""
        ...

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        progress: ProgressCallback | None,
        reissue_of: str | None = None,
    ) -> Path:
        """Download the result to exactly `dest` (resuming a `.part` left by an earlier run).

        `reissue_of`: `url` is a fresh link for the same result as that expired one, so the `.part` is
        resumed (its validator checked). An expired link is `LinkExpiredError`; a full disk is
        `BatchFatalError`.
        """
        ...

    async def delete(self, remote_id: str) -> None:
        """Delete remote media; deleting an already deleted id is success."""
        ...


@runtime_checkable
class Starter(Protocol):
    """An optional capability: a job must be started once the media is ready (Recuro's StartJob).

    Attributes:
        start_when_predicted: True when `start()` may be tried as soon as the media is *predicted* ready:
            the service refuses a start on unready media with `NotReadyError` and no effect, so the
            attempt costs no more than a status call and saves one when the prediction is right.
    """

    start_when_predicted: bool

    async def start(self, remote_id: str, *, notify_url: str | None) -> None:
        """Start the job on ready media. Not idempotent."""
        ...


@runtime_checkable
class Sweeper(Protocol):
    """An optional capability: one call lists every media on the account (Recuro's ListMedia).

    The engine uses it to find what an unanswered upload created, to take the account's baseline, and to
    watch many waiting items with one call. Without it, an unanswered upload finds no candidate (safe
    only for a service whose uploads are idempotent) and every waiting item is probed with `status`.

    Attributes:
        sweep_phases: the phases one `sweep()` can reveal (Recuro's ListMedia: a finished job's URL).
    """

    sweep_phases: frozenset[Phase]

    async def sweep(self) -> list[RemoteMedia]:
        """Every media on the account with its result URL if any: one call for the batch."""
        ...


NotificationSink = Callable[[str, RemoteStatus], object]
"""`deliver(remote_id, status)`: where a parsed callback goes (the engine's `Runner.notify`)."""


class Webhook(Protocol):
    """An ASGI app that receives a service's callbacks, and the `notify_url` to give the service."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve one callback request."""
        ...

    def notify_url(self, public_base_url: str) -> str:
        """The URL to pass as `notify_url` when the app is reachable at `public_base_url`."""
        ...


@runtime_checkable
class Notifier(Protocol):
    """An optional capability: the service calls back when an item moves (Recuro's notify_url)."""

    def webhook(self, deliver: NotificationSink, *, token: str | None = None) -> Webhook:
        """An app that parses the service's callbacks and hands each to `deliver` as a `RemoteStatus`.

        `token` is the secret first segment of its path (a new random one when None): given, the same
        URL is served again by a later process (a rerun receiving callbacks meant for the killed run).
        """
        ...


@runtime_checkable
class Prechecker(Protocol):
    """An optional capability: tell, before the first upload, whether the service already has the input.

    A content-addressed service (MediaCrush) knows the id of an input before it is uploaded. The engine asks
    once, before the item's first upload intent, and records the answer: media found there is someone
    else's (never deleted); media the batch's own uploads create is the batch's, also after a crash.
    """

    async def precheck(self, source: Source) -> str | None:
        """The remote id of the input if the service already has it, else None (no side effect)."""
        ...


@runtime_checkable
class Preflight(Protocol):
    """An optional capability: the batch's first call, before any item moves.

    It proves that the service is reachable and takes the credentials (a refusal or an unreachable host is
    `BatchFatalError`, naming the cause and the fix), and returns the account's media (the baseline).
    """

    async def preflight(self) -> list[RemoteMedia]:
        """List the account's media, or raise `BatchFatalError` saying what to fix."""
        ...


@runtime_checkable
class Describer(Protocol):
    """An optional capability: the parts of a finished item's output (the files a MediaCrush manifest
    lists), for a display. Without it an item's output is its one file."""

    async def describe(self, output: Path) -> list[str]:
        """The paths (or URLs) an item's output at `output` stands for."""
        ...


async def _no_listing() -> list[RemoteMedia]:
    return []


def list_media(adapter: ServiceAdapter) -> Callable[[], Awaitable[list[RemoteMedia]]]:
    """The adapter's account listing, or one that finds nothing for a service without `Sweeper`."""
    return adapter.sweep if isinstance(adapter, Sweeper) else _no_listing


def sweep_phases(adapter: ServiceAdapter) -> frozenset[Phase]:
    """The phases the adapter's listing reveals (none without `Sweeper`)."""
    return adapter.sweep_phases if isinstance(adapter, Sweeper) else frozenset()


def starts_on_prediction(adapter: ServiceAdapter) -> bool:
    """True when the adapter starts jobs and may try a start on a predicted-ready media."""
    return isinstance(adapter, Starter) and adapter.start_when_predicted


def starter(adapter: ServiceAdapter) -> Starter:
    """The adapter as a `Starter`; a `TypeError` for a service without jobs (an engine bug)."""
    if not isinstance(adapter, Starter):
        raise TypeError(f"{adapter!r} starts no jobs")
    return adapter
