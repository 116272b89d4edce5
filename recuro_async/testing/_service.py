"""The emulated service's domain: accounts' media, jobs, restored files and the work that moves them.

`RecuroService` holds the state and answers the actions the app dispatches to it. What exists only while
the emulator runs (a task group, an HTTP client for fetches and callbacks, the media directory) is its
`Runtime`, given by `RecuroEmulator` on entry and taken away on exit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import anyio
import anyio.abc
import attrs
import httpx

from recuro_async.testing._callbacks import CallbackAttempt, deliver
from recuro_async.testing._catalog import ApiError
from recuro_async.testing._config import EmulatorConfig
from recuro_async.testing._faults import FaultPlan
from recuro_async.testing._lifecycle import (
    COLORIZE_JOB_SHARES,
    JOB_SHARES,
    MEDIA_SHARES,
    Job,
    JobSlots,
    Media,
    ProcessingTimes,
    Segment,
    jitter_factor,
    timeline,
)
from recuro_async.testing._log import RequestLog
from recuro_async.testing._media import (
    MIB,
    Blob,
    JobSettings,
    Spool,
    extension_of,
    name_from_url,
    restore_blob,
    sniff_container,
)
from recuro_async.testing._ratelimit import SlidingWindowLimit

logger = logging.getLogger("recuro_async.testing")

_SCALING_FACTOR: Mapping[str | None, float] = {None: 1.0, "1080": 1.25, "2160": 2.0}


@attrs.frozen
class Runtime:
    """What exists only while the emulator runs.

    Attributes:
        tg: the task group of fetches, restorations and callbacks.
        http: the client that fetches originals and POSTs callbacks.
        media_dir: where originals and restored files spill to disk.
    """

    tg: anyio.abc.TaskGroup
    http: httpx.AsyncClient
    media_dir: Path


class _FetchFailedError(Exception):
    pass


class RecuroService:
    """The service's state and actions; its background work runs in the `runtime`'s task group."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = cfg = config
        self.ratelimit = SlidingWindowLimit(cfg.rate_limit, cfg.rate_window, cfg.refusal)
        self.fault_plan = FaultPlan(
            cfg.seed,
            error_rate=cfg.fault_rate,
            drop_rate=cfg.drop_rate,
            truncate_rate=cfg.truncate_rate,
            job_failure_rate=cfg.job_failure_rate,
            latency=cfg.latency,
            latency_min=cfg.latency_min,
        )
        self.request_log = RequestLog()
        self.runtime: Runtime | None = None
        self.callbacks: list[CallbackAttempt] = []
        self.callbacks_lost: list[str] = []  # file_ids whose callback `callback_loss` never sent
        self.media: dict[str, Media] = {}
        self._by_owner: dict[str, dict[str, Media]] = {}
        self._guids: dict[str, Media] = {}
        self._slots = JobSlots(cfg.max_concurrent_jobs)
        ids = random.Random(f"recuro-emulator:{cfg.seed}:ids")
        self._next_id = 100000 + ids.randrange(800000)
        self._guid_rng = ids
        self._url_key = hashlib.sha256(f"recuro-emulator:{cfg.seed}:urls".encode()).digest()
        self._restored_sent: dict[str, int] = {}
        self.processing_times: dict[str, ProcessingTimes] = {}
        self.changed = anyio.Event()
        self._fetch_limiter = anyio.CapacityLimiter(cfg.max_concurrent_fetches)
        self._restore_limiter = anyio.CapacityLimiter(2)

    @property
    def running(self) -> bool:
        """Whether the service has its runtime (the emulator is entered)."""
        return self.runtime is not None

    def _require_running(self) -> anyio.abc.TaskGroup:
        if self.runtime is None:
            raise RuntimeError(
                "the RecuroEmulator is not running: use `async with RecuroEmulator(...)`"
            )
        return self.runtime.tg

    @property
    def _http(self) -> httpx.AsyncClient:
        if self.runtime is None:
            raise RuntimeError("the RecuroEmulator is not running")
        return self.runtime.http

    @property
    def _dir(self) -> Path:
        if self.runtime is None:
            raise RuntimeError("the RecuroEmulator is not running")
        return self.runtime.media_dir

    def notify(self) -> None:
        """Wake everyone waiting for a change (a request, fetch, restoration or callback)."""
        self.changed.set()
        self.changed = anyio.Event()

    def media_ids(self, owner: str | None = None) -> list[str]:
        """The file_ids currently stored (of one account, or of all), oldest first."""
        if owner is None:
            return list(self.media)
        return list(self._by_owner.get(owner, {}))

    # ------------------------------------------------------------ actions (called by the app)

    def lookup(self, owner: str, file_id: str) -> Media:
        """Return the caller's media `file_id` or raise MediaNotFound."""
        media = self._by_owner.get(owner, {}).get(file_id)
        if media is None:
            raise ApiError("MediaNotFound", f"No media with file_id '{file_id}' exists.")
        return media

    def owned_media(self, owner: str) -> list[Media]:
        """The caller's media, oldest first."""
        return list(self._by_owner.get(owner, {}).values())

    def count_restored_bytes(self, file_id: str, size: int) -> None:
        """Add `size` body bytes of a restored-file download of `file_id` (see `restored_bytes_sent`)."""
        self._restored_sent[file_id] = self._restored_sent.get(file_id, 0) + size

    def restored_bytes_sent(self, file_id: str) -> int:
        """Body bytes of `file_id`'s restored files handed to the HTTP server so far, all downloads.

        An upper bound of what reached the client (a client that goes away loses what was buffered):
        what a test needs to show that a resumed download did not fetch the file again.
        """
        return self._restored_sent.get(file_id, 0)

    def restored_url(self, origin: str, guid: str) -> str:
        """The download URL of a restored file, signed with an expiry when `restored_url_ttl` is set."""
        url = restored_url(origin, guid)
        ttl = self.config.restored_url_ttl
        if ttl is None:
            return url
        expires = f"{anyio.current_time() + self.config.scaled(ttl):.3f}"
        return f"{url}&expires={expires}&sig={self._sign(guid, expires)}"

    def check_restored_signature(self, guid: str, expires: str | None, sig: str | None) -> None:
        """Raise a 403 `ApiError` unless a signed link is genuine and unexpired (no-op without a TTL)."""
        if self.config.restored_url_ttl is None:
            return
        if (
            expires is None
            or sig is None
            or not hmac.compare_digest(sig.encode(), self._sign(guid, expires).encode())
        ):
            raise ApiError("LinkInvalid", "The download link is not valid.", status=403)
        try:
            deadline = float(expires)
        except ValueError:
            raise ApiError("LinkInvalid", "The download link is not valid.", status=403) from None
        if anyio.current_time() > deadline:
            raise ApiError(
                "LinkExpired",
                "The download link has expired; GetProgress gives a fresh one.",
                status=403,
            )

    def _sign(self, guid: str, expires: str) -> str:
        message = f"{guid}:{expires}".encode()
        return hmac.new(self._url_key, message, hashlib.sha256).hexdigest()[:32]

    def media_by_guid(self, guid: str) -> Media | None:
        """The media whose current job's restored file has this guid."""
        return self._guids.get(guid)

    async def upload_media(
        self,
        owner: str,
        original_file_url: str,
        *,
        username: str | None,
        password: str | None,
        notify_url: str | None,
    ) -> Media:
        """Register a new media file and start fetching its original.

        The fetch runs in the service's task group either way; with `fetch_timing="before-answer"` the
        caller also waits until it has ended (a cancelled request leaves the fetch running).
        """
        tg = self._require_running()
        file_id = f"ids-{self._next_id}{extension_of(original_file_url)}"
        self._next_id += 1
        media = Media(
            file_id=file_id,
            owner=owner,
            original_url=original_file_url,
            name=name_from_url(original_file_url),
            notify_url=notify_url,
            username=username,
            password=password,
            created_at=anyio.current_time(),
        )
        self.media[file_id] = media
        self._by_owner.setdefault(owner, {})[file_id] = media
        tg.start_soon(self._fetch, media, name=f"fetch {file_id}")
        if self.config.fetch_timing == "before-answer":
            await media.fetched.wait()
        return media

    def start_job(
        self, media: Media, settings: JobSettings, *, notify_url: str | None, origin: str
    ) -> Job:
        """Start a job on completed media (refusals per the document), queued behind the job slots."""
        tg = self._require_running()
        now = anyio.current_time()
        if media.error is not None:
            raise ApiError(*media.error)
        if not media.media_completed(now):
            state = media.snapshot(now).state
            raise ApiError(
                "MediaNotReady",
                f"The media is not ready for restoration yet (state {state}); wait for MediaCompleted.",
            )
        previous = media.job
        if previous is not None and not previous.failed(now):
            raise ApiError("JobAlreadyStarted", "A job has already been started for this media.")
        if media.original is None:
            raise ApiError("MediaNotReady", "The media is not ready for restoration yet.")
        cfg = self.config
        mib = media.original.size / MIB
        number = media.jobs_started + 1
        run = cfg.scaled(
            (cfg.job_base_seconds + cfg.job_seconds_per_mib * mib)
            * (1.5 if settings.colorize else 1.0)
            * _SCALING_FACTOR[settings.output_scaling]
            * jitter_factor(cfg.jitter, cfg.seed, media.file_id, "job", number)
        )
        fail_point = self.fault_plan.job_failure(media.file_id)
        start, end, fail_at = self._slots.reserve(now, run, fail_point)
        shares = COLORIZE_JOB_SHARES if settings.colorize else JOB_SHARES
        segments = (Segment("JobQueued", now, start), *timeline(start, run, shares))
        guid = str(uuid.UUID(int=self._guid_rng.getrandbits(128), version=4))
        job = Job(
            settings=settings,
            guid=guid,
            notify_url=notify_url,
            origin=origin,
            submitted_at=now,
            start_at=start,
            end_at=end,
            fail_at=fail_at,
            segments=segments,
        )
        if previous is not None:
            self._guids.pop(previous.guid, None)
        media.job = job
        media.jobs_started = number
        drawn = self.processing_times.get(media.file_id, ProcessingTimes())
        self.processing_times[media.file_id] = attrs.evolve(drawn, jobs=(*drawn.jobs, run))
        self._guids[guid] = media
        if fail_at is None:
            tg.start_soon(self._produce, media, job, name=f"restore {media.file_id}")
        if notify_url is not None:
            tg.start_soon(self._job_callback, media, job, name=f"job callback {media.file_id}")
        return job

    async def delete_media(self, media: Media) -> None:
        """Forget a media file and remove its stored bytes."""
        media.deleted = True
        self.media.pop(media.file_id, None)
        self._by_owner.get(media.owner, {}).pop(media.file_id, None)
        if media.fetch_scope is not None:
            media.fetch_scope.cancel()
        job = media.job
        if job is not None:
            self._guids.pop(job.guid, None)
            if job.restored is not None:
                await job.restored.remove()
        if media.original is not None:
            await media.original.remove()

    # ------------------------------------------------------------ background work

    async def _fetch(self, media: Media) -> None:
        try:
            await self._fetch_and_analyze(media)
        finally:
            media.fetched.set()

    async def _fetch_and_analyze(self, media: Media) -> None:
        cfg = self.config
        blob = None
        with anyio.CancelScope() as scope:
            media.fetch_scope = scope
            if media.deleted:
                return
            async with self._fetch_limiter:
                spool = Spool(self._dir, cfg.disk_threshold, suffix=".original")
                try:
                    blob = await self._download_original(media, spool)
                except _FetchFailedError as exc:
                    await spool.discard()
                    self._fail_media(media, "MediaUploadFailed", str(exc))
                    return
                except Exception as exc:
                    await spool.discard()
                    reason = f"Could not fetch original_file_url ({type(exc).__name__})."
                    self._fail_media(media, "MediaUploadFailed", reason)
                    return
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await spool.discard()
                    raise
        media.fetch_scope = None
        if blob is None:
            return
        if media.deleted or scope.cancelled_caught:
            await blob.remove()
            return
        container = sniff_container(spool.head, media.name)
        if container is None:
            await blob.remove()
            self._fail_media(
                media,
                "MediaFormatUnsupported",
                "The media is not in a supported format (MKV, MOV, MP3, MP4, MPG, MXF or WAV).",
            )
            return
        media.original = blob
        media.container = container
        duration = cfg.scaled(
            cfg.media_base_seconds + cfg.media_seconds_per_mib * blob.size / MIB
        ) * jitter_factor(cfg.jitter, cfg.seed, media.file_id, "analysis")
        media.segments = timeline(anyio.current_time(), duration, MEDIA_SHARES)
        self.processing_times[media.file_id] = ProcessingTimes(analysis=duration)
        self.notify()
        if media.notify_url is not None:
            self._require_running().start_soon(
                self._media_callback, media, name=f"media callback {media.file_id}"
            )

    async def _download_original(self, media: Media, spool: Spool) -> Blob:
        auth = None
        if media.username is not None or media.password is not None:
            auth = httpx.BasicAuth(media.username or "", media.password or "")
        limit = self.config.max_media_bytes
        async with self._http.stream(
            "GET",
            media.original_url,
            auth=auth,
            headers={"accept-encoding": "identity"},
            follow_redirects=True,
        ) as response:
            if response.status_code != 200:
                raise _FetchFailedError(
                    f"Fetching original_file_url answered HTTP {response.status_code}."
                )
            length = response.headers.get("content-length", "")
            media.total = int(length) if length.isdigit() else None
            async for chunk in response.aiter_bytes():
                await spool.write(chunk)
                media.received = spool.size
                if limit is not None and spool.size > limit:
                    raise _FetchFailedError(f"The media is larger than {limit} bytes.")
        return await spool.finish()

    def _fail_media(self, media: Media, code: str, message: str) -> None:
        media.error = (code, message)
        self.notify()
        if media.notify_url is not None and not media.deleted:
            body = {"file_id": media.file_id, "error_code": code, "error_message": message}
            self._require_running().start_soon(
                self._deliver,
                media.notify_url,
                body,
                media.file_id,
                name=f"callback {media.file_id}",
            )

    async def _produce(self, media: Media, job: Job) -> None:
        original = media.original
        if original is None:
            return
        try:
            async with self._restore_limiter:
                blob = await restore_blob(
                    original, job.settings, self._dir, self.config.disk_threshold
                )
        except Exception:
            if not media.deleted:
                logger.exception("restoration failed", extra={"file_id": media.file_id})
                job.fail_at = anyio.current_time()
                job.ready.set()
            return
        if media.deleted or media.job is not job:
            await blob.remove()
            return
        job.restored = blob
        job.last_modified = time.time()
        job.ready.set()
        self.notify()

    async def _media_callback(self, media: Media) -> None:
        done = media.media_done_at
        if done is None:
            return
        await anyio.sleep_until(done)
        if media.deleted or media.notify_url is None or self._lost(media.file_id, "media"):
            return
        body = {
            "file_id": media.file_id,
            "error_code": "MediaCompleted",
            "error_message": "Media completed successfully.",
        }
        await self._deliver(media.notify_url, body, media.file_id)

    async def _job_callback(self, media: Media, job: Job) -> None:
        await anyio.sleep_until(job.end_at if job.fail_at is None else job.fail_at)
        if job.fail_at is None:
            await job.ready.wait()
        if media.deleted or media.job is not job or job.notify_url is None:
            return
        if self._lost(media.file_id, f"job {media.jobs_started}"):
            return
        if job.fail_at is not None:
            body = {
                "file_id": media.file_id,
                "error_code": "JobFailed",
                "error_message": "The restoration job failed; StartJob may be sent again.",
            }
        else:
            body = {
                "file_id": media.file_id,
                "error_code": "JobCompleted",
                "error_message": "Job completed successfully.",
                "restored_file_url": self.restored_url(job.origin, job.guid),
            }
        await self._deliver(job.notify_url, body, media.file_id)

    def _lost(self, file_id: str, kind: str) -> bool:
        """Whether this callback is one `callback_loss` never sends (a seeded draw of its own)."""
        loss = self.config.callback_loss
        lost = (
            loss > 0 and random.Random(f"{self.config.seed}:{file_id}:{kind}:lost").random() < loss
        )
        if lost:
            self.callbacks_lost.append(file_id)
            self.notify()
        return lost

    async def _deliver(self, url: str, body: dict[str, str], file_id: str) -> None:
        await deliver(self._http, self.config, url, body, file_id, record=self._record_callback)

    def _record_callback(self, attempt: CallbackAttempt) -> None:
        self.callbacks.append(attempt)
        self.notify()


def restored_url(origin: str, guid: str) -> str:
    """The download URL of a restored file served at `origin`."""
    return f"{origin.rstrip('/')}/download.php?guid={guid}"
