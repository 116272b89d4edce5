"""The Recuro adapter: the engine's remote steps as calls of the public `recuro_async` client.

stage -> UploadMedia -> MediaCompleted -> StartJob -> JobCompleted -> download -> DeleteMedia.

Error mapping (what the engine does with each answer):
- UploadMedia: an API error with an error_code fails the item with that code; a transport error with
  `request_sent=True`, a 5xx, or a 200 without a file_id is an *unknown outcome* (reconciled, never
  repeated); a rate-limit refusal or a request that certainly never left is transient (retried).
- StartJob: the document names no refusal code, so a refusal decides nothing by its name: it is a
  `StartRefusedError`, and the engine reads GetProgress to judge it (not ready, a job already there, a
  failure, or a real refusal). `MediaNotReady` (our emulator's code) is only a fast path to "not ready".
  Authorization refusals (401/403) fail the item; rate limits and 5xx are handled as for UploadMedia.

Codes the document does not name, and what decides instead: `MediaNotReady`, `JobAlreadyStarted` (StartJob:
the media's state); `MediaNotFound` (GetProgress: GONE is confirmed by ListMedia before it fails an item;
DeleteMedia: success, as deleting is idempotent); `RateLimit*` (SPEC 2.2's assumption, with 429).
- GetProgress: an error_code (MediaUploadFailed, MediaFormatUnsupported, JobFailed...) is the item's failure
  (phase FAILED), `MediaNotFound` is phase GONE; rate limits, 5xx and transport errors are transient.
- DeleteMedia of an id the service no longer knows is success.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import anyio.lowlevel
import attrs

from _clientkit._limiter import Pacing, SlidingWindowLimiter
from orchestrator._budget import JournaledWindow
from orchestrator._config import RunnerConfig
from orchestrator._inputs import local_file_problem
from orchestrator._polling import PollSettings
from orchestrator._service import (
    BatchFatalError,
    ItemError,
    JobSpec,
    LinkExpiredError,
    NotificationSink,
    NotReadyError,
    OutcomeUnknownError,
    Phase,
    ProgressCallback,
    RemoteMedia,
    RemoteStatus,
    Source,
    StartRefusedError,
)
from orchestrator._staging import is_url
from recuro_async import (
    DiskFullError,
    DownloadLinkExpiredError,
    Filter,
    InputContainer,
    MediaNotFoundError,
    OutputFormat,
    Progress,
    RateLimit,
    RateLimitedError,
    RecuroAPIError,
    RecuroClient,
    RecuroHTTPError,
    RedisLimiter,
    ResponseFormatError,
    ServerError,
    State,
    TransportError,
)
from recuro_async._client import REDIS_URL_ENV
from recuro_async._constants import DEFAULT_TIMEOUT
from recuro_async.webhooks import Notification, WebhookReceiver

__all__ = [
    "DEFAULT_MAX_ACTIVE",
    "RATE_LIMIT",
    "RecuroAdapter",
    "status_from_notification",
    "status_of",
]

log = logging.getLogger("orchestrator")

# The one refusal code read directly, as a fast path (our emulator's; the engine also learns a service's own
# "not ready" code from the state it reads after a refusal). Every other StartJob refusal is judged by state.
_NOT_READY_FAST_PATH: Final = frozenset({"medianotready"})
_MEDIA_STEPS: Final = State.MEDIA_COMPLETED.rank  # MediaUploading .. MediaAnalyze
_JOB_FIRST: Final = State.JOB_QUEUED_COLORIZATION.rank  # after the queue
_JOB_STEPS: Final = State.JOB_COMPLETED.rank - _JOB_FIRST


RATE_LIMIT: Final = 200
"""The API's documented rate limit: requests per 60 s window."""
# Little's law: items in flight = throughput x time each spends on the service. The rate budget finishes at
# most 200 / 60 s / ~3.2 calls per item (~1 item/s); 200 in flight keep it busy while items take up to ~3
# windows (B1: 32 gave 1.28x the lower bound at 300 items and 2.9x at 500; 200 gave 1.15x and 1.06x).
DEFAULT_MAX_ACTIVE: Final = RATE_LIMIT
"""Media on the account at once, by default."""


def status_of(progress: Progress) -> RemoteStatus:
    """A GetProgress answer as the engine sees it (phase and a fraction for predictions)."""
    state = progress.state
    shown = progress.raw_state or state.value
    if state is State.UNKNOWN:
        return RemoteStatus(Phase.UNKNOWN, state=shown, progress=progress.progress)
    if state is State.JOB_COMPLETED:
        if progress.restored_file_url:
            return RemoteStatus(
                Phase.RESTORED,
                fraction=1.0,
                state=shown,
                progress=progress.progress,
                result_url=progress.restored_file_url,
            )
        # done but no URL yet: keep waiting (a sweep or the next probe will see it)
        return RemoteStatus(Phase.RUNNING, state=shown, progress=progress.progress)
    within = min(max(progress.progress, 0.0), 100.0) / 100
    if state is State.MEDIA_COMPLETED:
        return RemoteStatus(Phase.READY, fraction=1.0, state=shown, progress=progress.progress)
    if state < State.MEDIA_COMPLETED:
        fraction = (state.rank + within) / _MEDIA_STEPS
        return RemoteStatus(
            Phase.PROCESSING, fraction=fraction, state=shown, progress=progress.progress
        )
    if state.rank < _JOB_FIRST:  # JobQueued: how long the queue takes says nothing about the job
        return RemoteStatus(Phase.RUNNING, state=shown, progress=progress.progress)
    fraction = (state.rank - _JOB_FIRST + within) / _JOB_STEPS
    return RemoteStatus(Phase.RUNNING, fraction=fraction, state=shown, progress=progress.progress)


def _failure(exc: RecuroAPIError) -> RemoteStatus:
    return RemoteStatus(
        Phase.FAILED,
        state=exc.error_code,
        error_code=exc.error_code,
        error_message=exc.error_message,
    )


class RecuroAdapter:
    """`ServiceAdapter` for Recuro over a `RecuroClient` the caller owns (and closes).

    The job settings are validated by the client (`validate_job`) when the adapter is made, so a bad
    format, filter or scaling raises `ValueError` before any request.
    """

    name = "recuro"
    start_when_predicted = True  # Starter: StartJob refuses unready media with no effect
    sweep_phases = frozenset({Phase.RUNNING})  # Sweeper: ListMedia shows a finished job's URL

    def __init__(
        self,
        client: RecuroClient,
        *,
        output_format: OutputFormat | str,
        filters: Sequence[Filter | str] = (),
        output_scaling: str | int | None = None,
    ) -> None:
        self._client = client
        self._format, self._filters, self._scaling = client.validate_job(
            output_format=output_format, filters=filters, output_scaling=output_scaling
        )

    def __repr__(self) -> str:
        return f"<RecuroAdapter format={self._format!r} filters={self._filters!r}>"

    @staticmethod
    def batch_client(
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        rate_limit: int = RATE_LIMIT,
        period: float = 60.0,
        redis_url: str | None = None,
        **options: Any,
    ) -> tuple[RecuroClient, JournaledWindow]:
        """A client for a batch, and its limiter as a `JournaledWindow` for `open_batch(..., window=)`.

        The window then lives in the batch's journal, so a rerun right after a kill never puts more
        than `rate_limit` requests in any `period` (seconds). Without Redis the limiter is paced: a
        token bucket in front of the window sends a backlog out evenly, not at the window's edges. With
        `redis_url` (else `$RECURO_REDIS_URL`) the window is shared with other processes and kept in
        Redis, which the client owns. `options` go to `RecuroClient` (`base_url`, `download_options`...).
        """
        if redis_url := redis_url or os.environ.get(REDIS_URL_ENV):
            limit = RateLimit(rate_limit, period)
            client = RecuroClient(
                api_key, api_secret, rate_limit=limit, redis_url=redis_url, **options
            )
            assert isinstance(client.limiter, RedisLimiter)  # noqa: S101 - asked for above
            return client, JournaledWindow(client.limiter)  # no snapshots: Redis keeps the window
        pacing = Pacing.even(rate_limit, period)
        window = JournaledWindow(
            SlidingWindowLimiter(rate_limit, period, grace=DEFAULT_TIMEOUT, pacing=pacing)
        )
        return RecuroClient(api_key, api_secret, limiter=window, **options), window

    @staticmethod
    def batch_config(out: Path, *, webhook: bool = False, **changes: Any) -> RunnerConfig:
        """The engine's settings for a Recuro batch into `out` (`changes` override them):
        `DEFAULT_MAX_ACTIVE` media at once, polls planned for a few calls per item in 200 a minute (slow
        reconciliation only, with `webhook` callbacks)."""
        tuned = RunnerConfig(out, max_active=DEFAULT_MAX_ACTIVE, poll=PollSettings(webhook=webhook))
        return attrs.evolve(tuned, **changes)

    @staticmethod
    def input_problem(text: str) -> str | None:
        """What is wrong with `text` as an input (an http(s) URL the service fetches, or a readable
        local file of a container it reads, `InputContainer`), or None; checked before any request."""
        if is_url(text):
            return None if urllib.parse.urlsplit(text).netloc else f"{text}: not a valid URL"
        if "://" in text:
            return f"{text}: only http(s) URLs or local files can be restored"
        return local_file_problem(text, suffixes={c.value for c in InputContainer})

    @property
    def settings(self) -> dict[str, object]:
        """The job settings as they go on the wire."""
        return {
            "output_format": self._format,
            "filters": list(self._filters),
            "output_scaling": self._scaling,
        }

    def job_spec(self) -> JobSpec:
        """Service and job settings; the filter order does not change the job, so it is sorted."""
        settings = dict(self.settings)
        settings["filters"] = sorted(f.casefold() for f in self._filters)
        settings["output_format"] = self._format.casefold()
        return JobSpec("recuro", settings)

    def output_name(self, input_name: str) -> str:
        """The input's base name with the output format's extension (`reel.mpg` -> `reel.mp4`)."""
        return (Path(input_name).stem or "media") + OutputFormat(self._format).extension

    # ------------------------------------------------------------------ remote steps

    async def upload(self, source: Source, *, notify_url: str | None) -> str:
        """UploadMedia of a URL the service fetches; an ambiguous failure is `OutcomeUnknownError`."""
        if isinstance(source, Path):
            raise ItemError("NoStager", f"{source}: Recuro fetches its inputs; stage local files")
        try:
            return await self._client.upload_media(source, notify_url=notify_url)
        except ResponseFormatError as exc:
            raise OutcomeUnknownError(
                f"UploadMedia answered without a usable file_id: {exc}"
            ) from exc
        except Exception as exc:
            raise _non_idempotent(exc, "UploadMedia") from exc

    async def start(self, remote_id: str, *, notify_url: str | None) -> None:
        """StartJob with the batch's settings."""
        try:
            await self._client.start_job(
                remote_id,
                output_format=self._format,
                filters=self._filters,
                output_scaling=self._scaling,
                notify_url=notify_url,
            )
        except (RateLimitedError, ServerError) as exc:
            raise _non_idempotent(exc, "StartJob") from exc
        except RecuroAPIError as exc:
            if exc.error_code.casefold() in _NOT_READY_FAST_PATH:
                raise NotReadyError(exc.error_message) from exc
            if exc.status_code in (401, 403):
                raise _non_idempotent(exc, "StartJob") from exc
            # the document names no StartJob refusal: the engine reads the media's state to judge it
            raise StartRefusedError(exc.error_code, exc.error_message) from exc
        except Exception as exc:
            raise _non_idempotent(exc, "StartJob") from exc

    async def status(self, remote_id: str) -> RemoteStatus:
        """GetProgress as a `RemoteStatus`; service-side failures become phase FAILED / GONE."""
        try:
            progress = await self._client.get_progress(remote_id)
        except MediaNotFoundError as exc:
            return RemoteStatus(
                Phase.GONE, error_code=exc.error_code, error_message=exc.error_message
            )
        except (RateLimitedError, ServerError):
            raise
        except RecuroAPIError as exc:
            return _failure(exc)
        return status_of(progress)

    async def preflight(self) -> list[RemoteMedia]:
        """ListMedia as the batch's first call: a refusal or an unreachable host stops the batch.

        ListMedia takes nothing but the credentials, so an API refusal of it (whatever its code) means the
        account refused them; a transport failure after the client's retries means the host is out of reach.
        """
        try:
            return await self.sweep()
        except (RateLimitedError, ServerError):
            raise  # the service answered: it is there; the engine goes on
        except TransportError as exc:
            raise BatchFatalError(
                f"cannot reach the Recuro API at {self._client.base_url} ({type(exc).__name__}); "
                "check --base-url (or RECURO_BASE_URL) and the network"
            ) from exc
        except RecuroAPIError as exc:
            raise BatchFatalError(
                f"the service refused the credentials ({exc.error_code}: {exc.error_message}); "
                "check --api-key / --api-secret-file (or RECURO_API_KEY / RECURO_API_SECRET)"
            ) from exc
        except RecuroHTTPError as exc:
            raise BatchFatalError(
                f"{self._client.base_url} answered {exc.status_code} to ListMedia, not as the Recuro API "
                "does; check --base-url (or RECURO_BASE_URL)"
            ) from exc

    async def sweep(self) -> list[RemoteMedia]:
        """ListMedia: every media on the account, with its restored file URL if any."""
        media = await self._client.list_media()
        return [RemoteMedia(m.file_id, m.restored_file_url) for m in media]

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        progress: ProgressCallback | None,
        reissue_of: str | None = None,
    ) -> Path:
        """The restored file to exactly `dest`, resuming a `.part` left by an earlier run.

        `dest` is the output path the engine reserved for this item (journaled), so a file already
        there is this item's own (a crash after the rename, before the journal said so): replaced.
        """
        try:
            return await self._client.download(
                url, dest, resume=True, progress=progress, overwrite=True, reissue_of=reissue_of
            )
        except DownloadLinkExpiredError as exc:
            raise LinkExpiredError(f"the download link answered {exc.status_code}") from exc
        except DiskFullError as exc:
            raise BatchFatalError(
                f"the disk is full writing {exc.path}; free some space and rerun the same command"
            ) from exc

    async def delete(self, remote_id: str) -> None:
        """DeleteMedia; an id the service no longer lists is already deleted (deleting is idempotent).

        The document names no "not found" code, so a refusal is judged by ListMedia, not by its code.
        """
        try:
            await self._client.delete_media(remote_id)
        except MediaNotFoundError:
            log.debug("media already gone at delete")
        except (RateLimitedError, ServerError):
            raise
        except RecuroAPIError:
            media = await self._client.list_media()
            if any(m.file_id == remote_id for m in media):
                raise  # still there: a real refusal (transient for the engine)
            log.debug("delete refused, and the media is not listed: already gone")

    # ------------------------------------------------------------------ callbacks

    def webhook(self, deliver: NotificationSink, *, token: str | None = None) -> WebhookReceiver:
        """Notifier: a receiver for notify_url callbacks, each handed to `deliver` as a `RemoteStatus`."""

        async def consume(notification: Notification) -> None:
            deliver(notification.file_id, status_from_notification(notification))
            await anyio.lowlevel.checkpoint()

        return WebhookReceiver(consume, token=token)


def status_from_notification(notification: Notification) -> RemoteStatus:
    """A notify_url callback as a `RemoteStatus` (MediaCompleted, JobCompleted, or a failure)."""
    if not notification.succeeded:
        return RemoteStatus(
            Phase.FAILED,
            state=notification.error_code,
            error_code=notification.error_code,
            error_message=notification.error_message,
        )
    if notification.is_job:
        if notification.restored_file_url:
            return RemoteStatus(
                Phase.RESTORED,
                state=notification.error_code,
                progress=100.0,
                result_url=notification.restored_file_url,
            )
        return RemoteStatus(Phase.UNKNOWN, state=notification.error_code)
    return RemoteStatus(Phase.READY, state=notification.error_code, progress=100.0)


def _non_idempotent(exc: Exception, action: str) -> Exception:
    """The engine's view of a failed UploadMedia / StartJob."""
    if isinstance(exc, TransportError):
        if exc.request_sent:
            return OutcomeUnknownError(f"{action}: the request may have reached the service")
        return exc  # never sent: transient
    if isinstance(exc, RateLimitedError):
        return exc  # refused before any effect: transient
    if isinstance(exc, ServerError):  # the API itself answered: it is done with the request
        return OutcomeUnknownError(
            f"{action}: the service answered {exc.error_code}", answered=True
        )
    if (
        isinstance(exc, RecuroHTTPError) and exc.status_code >= 500
    ):  # a proxy: the API may still run it
        return OutcomeUnknownError(f"{action}: a server on the way answered {exc.status_code}")
    if isinstance(exc, RecuroAPIError):
        return ItemError(exc.error_code, exc.error_message)
    if isinstance(exc, ValueError):
        return ItemError("InvalidArgument", str(exc))
    return exc
