"""RecuroEmulator: the service's state, its background work, and serving it over loopback."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import logging
import math
import random
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.abc
import attrs
import httpx

from recuro_async.testing._app import EmulatorApp
from recuro_async.testing._catalog import STATES, ApiError, canonical_state
from recuro_async.testing._config import EmulatorConfig
from recuro_async.testing._faults import FaultPlan, FaultRecord
from recuro_async.testing._lifecycle import (
    COLORIZE_JOB_SHARES,
    JOB_SHARES,
    MEDIA_SHARES,
    Job,
    JobSlots,
    Media,
    Segment,
    timeline,
)
from recuro_async.testing._log import LogEntry, RequestLog
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
_RETRYABLE_CALLBACK_STATUS = frozenset({408, 425, 429})


@attrs.frozen
class CallbackAttempt:
    """One POST of a notify_url callback.

    Attributes:
        time: when it was sent (monotonic seconds).
        file_id: the media it concerns.
        error_code: the body's error_code (MediaCompleted, JobCompleted or a failure code).
        attempt: 1 for the first try.
        outcome: the receiver's status code as a string, or the transport error's class name.
        delivered: whether the receiver answered 2xx.
        body: the JSON body sent.
    """

    time: float
    file_id: str
    error_code: str
    attempt: int
    outcome: str
    delivered: bool
    body: bytes = attrs.field(repr=False)


class _FetchFailedError(Exception):
    pass


class RecuroEmulator:
    """An emulator of the Recuro Media API 1.0: an ASGI app plus the tasks that make media move.

    Use it as an async context manager (it owns a task group for fetches, restorations and callbacks);
    `app` serves requests only while it is entered. `serve` runs it on loopback with uvicorn.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config if config is not None else EmulatorConfig()
        cfg = self.config
        self.ratelimit = SlidingWindowLimit(cfg.rate_limit, cfg.rate_window, cfg.refusal)
        self.fault_plan = FaultPlan(
            cfg.seed,
            error_rate=cfg.fault_rate,
            drop_rate=cfg.drop_rate,
            truncate_rate=cfg.truncate_rate,
            job_failure_rate=cfg.job_failure_rate,
            latency=cfg.latency,
        )
        self.request_log = RequestLog()
        self._callbacks: list[CallbackAttempt] = []
        self._media: dict[str, Media] = {}
        self._by_owner: dict[str, dict[str, Media]] = {}
        self._guids: dict[str, Media] = {}
        self._slots = JobSlots(cfg.max_concurrent_jobs)
        ids = random.Random(f"recuro-emulator:{cfg.seed}:ids")
        self._next_id = 100000 + ids.randrange(800000)
        self._guid_rng = ids
        self._url_key = hashlib.sha256(f"recuro-emulator:{cfg.seed}:urls".encode()).digest()
        self._restored_sent: dict[str, int] = {}
        self._app = EmulatorApp(self)
        self._state = "new"
        self._stack: contextlib.AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._client: httpx.AsyncClient | None = None
        self._directory: Path | None = None
        self._changed = anyio.Event()
        self._fetch_limiter = anyio.CapacityLimiter(cfg.max_concurrent_fetches)
        self._restore_limiter = anyio.CapacityLimiter(2)

    def __repr__(self) -> str:
        return f"<RecuroEmulator {self._state} media={len(self._media)} requests={len(self.request_log)}>"

    # ------------------------------------------------------------ lifecycle

    @property
    def app(self) -> EmulatorApp:
        """The ASGI application (mount it with `httpx.ASGITransport(app=emulator.app)`)."""
        return self._app

    @property
    def running(self) -> bool:
        """Whether the emulator is entered (its app can serve)."""
        return self._state == "running"

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError("a RecuroEmulator can be entered only once")
        stack = contextlib.AsyncExitStack()
        try:
            if self.config.media_dir is None:
                directory = Path(
                    await anyio.to_thread.run_sync(tempfile.mkdtemp, "", "recuro-emulator-")
                )
                stack.push_async_callback(_remove_tree, directory)
            else:
                directory = self.config.media_dir
                await anyio.to_thread.run_sync(
                    functools.partial(directory.mkdir, parents=True, exist_ok=True)
                )
            self._directory = directory
            self._client = await stack.enter_async_context(
                httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(self.config.fetch_timeout))
            )
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(self._tg.cancel_scope.cancel)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self._state = "running"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._state = "closed"
        stack, self._stack = self._stack, None
        if stack is not None:
            return await stack.__aexit__(exc_type, exc, tb)
        return None

    async def aclose(self) -> None:
        """Stop background work and remove the media directory (same as leaving `async with`)."""
        await self.__aexit__(None, None, None)

    def _require_running(self) -> anyio.abc.TaskGroup:
        if self._state != "running" or self._tg is None:
            raise RuntimeError(
                "the RecuroEmulator is not running: use `async with RecuroEmulator(...)`"
            )
        return self._tg

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the RecuroEmulator is not running")
        return self._client

    @property
    def _dir(self) -> Path:
        if self._directory is None:
            raise RuntimeError("the RecuroEmulator is not running")
        return self._directory

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
        task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve over real sockets with uvicorn until cancelled; report the API base URL when listening.

        `await task_group.start(emulator.serve)` returns e.g. "http://127.0.0.1:PORT/api/1.0/". Pass an
        already bound `sock` (see `bind_socket`) to get a busy port as a plain OSError before any task
        group wraps it.
        """
        self._require_running()
        await serve_asgi(
            self._socket_app,
            host=host,
            port=port,
            sock=sock,
            task_status=_ApiBaseStatus(task_status),
        )

    async def _socket_app(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Any],
        send: Callable[[Any], Any],
    ) -> None:
        await self._app({**scope, EmulatorApp.SOCKET_KEY: True}, receive, send)

    # ------------------------------------------------------------ observation

    @property
    def log(self) -> list[LogEntry]:
        """The request log, oldest first."""
        return self.request_log.entries()

    @property
    def faults(self) -> list[FaultRecord]:
        """Every fault injected so far, in order."""
        return list(self.fault_plan.record)

    @property
    def callbacks(self) -> list[CallbackAttempt]:
        """Every notify_url POST attempted so far, in order."""
        return list(self._callbacks)

    def media_ids(self, api_key: str | None = None) -> list[str]:
        """The file_ids currently stored (of one account, or of all), oldest first."""
        if api_key is None:
            return list(self._media)
        return list(self._by_owner.get(api_key, {}))

    def state_of(self, file_id: str) -> str:
        """The current state of a media file, or its error_code when it failed or does not exist."""
        media = self._media.get(file_id)
        if media is None:
            return "MediaNotFound"
        try:
            return media.snapshot(anyio.current_time()).state
        except ApiError as exc:
            return exc.code

    async def wait_for_state(self, file_id: str, state: str) -> str:
        """Wait until a media file reaches `state` or a later one, or fails; return what it reached.

        Returns the state, or the error_code (MediaUploadFailed, MediaFormatUnsupported, JobFailed,
        MediaNotFound). Exact and cheap: it sleeps until the next transition of the media's timeline or
        the next event (fetch done, restored file written, a request). Bound it with `anyio.fail_after`.
        """
        wanted = canonical_state(state)
        if wanted is None:
            raise ValueError(f"unknown state {state!r}; valid states: {', '.join(STATES)}")
        rank = STATES.index(wanted)
        while True:
            media = self._media.get(file_id)
            if media is None:
                return "MediaNotFound"
            now = anyio.current_time()
            try:
                reached = media.snapshot(now).state
            except ApiError as exc:
                return exc.code
            if STATES.index(reached) >= rank:
                return reached
            changed = self._changed
            upcoming = media.next_change(now)
            with anyio.move_on_after(math.inf if upcoming is None else upcoming - now):
                await changed.wait()

    def peak_window_count(self, window: float | None = None) -> int:
        """The most API requests that arrived within any `window` seconds (default: the rate window)."""
        span = self.config.rate_window if window is None else window
        times = [e.time for e in self.request_log.entries() if e.action != "download"]
        best = lo = 0
        for hi, t in enumerate(times):
            while times[lo] <= t - span:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds; it is rechecked after each request, fetch, restoration and callback.

        Bound it with `anyio.fail_after`. Time-driven state changes alone do not wake it: poll those.
        """
        while not predicate():
            await self._changed.wait()

    def notify(self) -> None:
        """Wake `wait_until` callers."""
        self._changed.set()
        self._changed = anyio.Event()

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

    def upload_media(
        self,
        owner: str,
        original_file_url: str,
        *,
        username: str | None,
        password: str | None,
        notify_url: str | None,
    ) -> Media:
        """Register a new media file and start fetching its original."""
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
        self._media[file_id] = media
        self._by_owner.setdefault(owner, {})[file_id] = media
        tg.start_soon(self._fetch, media, name=f"fetch {file_id}")
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
        run = cfg.scaled(
            (cfg.job_base_seconds + cfg.job_seconds_per_mib * mib)
            * (1.5 if settings.colorize else 1.0)
            * _SCALING_FACTOR[settings.output_scaling]
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
        self._guids[guid] = media
        if fail_at is None:
            tg.start_soon(self._produce, media, job, name=f"restore {media.file_id}")
        if notify_url is not None:
            tg.start_soon(self._job_callback, media, job, name=f"job callback {media.file_id}")
        return job

    async def delete_media(self, media: Media) -> None:
        """Forget a media file and remove its stored bytes."""
        media.deleted = True
        self._media.pop(media.file_id, None)
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
        duration = cfg.scaled(cfg.media_base_seconds + cfg.media_seconds_per_mib * blob.size / MIB)
        media.segments = timeline(anyio.current_time(), duration, MEDIA_SHARES)
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
        if media.deleted or media.notify_url is None:
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

    async def _deliver(self, url: str, body: dict[str, str], file_id: str) -> None:
        """POST a callback, retrying (doubling pauses) while the receiver is down or answers 5xx/429."""
        cfg = self.config
        payload = json.dumps(body).encode()
        for attempt in range(1, cfg.callback_attempts + 1):
            retry = True
            try:
                response = await self._http.post(
                    url,
                    content=payload,
                    headers={"content-type": "application/json"},
                    timeout=cfg.callback_timeout,
                    follow_redirects=False,
                )
            except Exception as exc:
                outcome, delivered = type(exc).__name__, False
            else:
                status = response.status_code
                outcome, delivered = str(status), 200 <= status < 300
                retry = status >= 500 or status in _RETRYABLE_CALLBACK_STATUS
            self._callbacks.append(
                CallbackAttempt(
                    anyio.current_time(),
                    file_id,
                    body["error_code"],
                    attempt,
                    outcome,
                    delivered,
                    payload,
                )
            )
            self.notify()
            logger.debug(
                "callback attempt",
                extra={"file_id": file_id, "attempt": attempt, "outcome": outcome},
            )
            if delivered or not retry:
                return
            if attempt < cfg.callback_attempts:
                await anyio.sleep(cfg.scaled(cfg.callback_retry_delay) * 2 ** (attempt - 1))


def restored_url(origin: str, guid: str) -> str:
    """The download URL of a restored file served at `origin`."""
    return f"{origin.rstrip('/')}/download.php?guid={guid}"


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind a TCP socket for `serve_asgi` (raises OSError, e.g. when the port is taken)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else every
    # response whose body follows its headers in a second write waits ~40 ms for a delayed ACK).
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)  # noqa: FBT003 - the socket API takes a positional flag
    except BaseException:
        sock.close()
        raise
    return sock


async def serve_asgi(
    app: Callable[[Any, Any, Any], Awaitable[None]],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    sock: socket.socket | None = None,
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve any ASGI 3 app with uvicorn until cancelled; report its origin ("http://HOST:PORT") when listening.

    The socket is bound before uvicorn starts (or given, bound, as `sock`; it is closed on exit), so
    readiness needs no polling and a busy port raises OSError (uvicorn itself would exit the process).
    Used for the emulator and, in tests, for small helper servers.
    """
    import uvicorn

    if sock is None:
        sock = bind_socket(host, port)
    server: uvicorn.Server | None = None
    try:
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            interface="asgi3",
            proxy_headers=False,
            ws="none",
            timeout_graceful_shutdown=1,
            server_header=False,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        task_status.started(f"http://{shown}:{bound_port}")
        await server.main_loop()  # ticks the Date header until cancelled
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            if server is not None and server.started:
                await server.shutdown(sockets=[sock])
        sock.close()


class _ApiBaseStatus(anyio.abc.TaskStatus[str]):
    """Turns the origin serve_asgi reports into the API base URL."""

    def __init__(self, inner: anyio.abc.TaskStatus[str]) -> None:
        self._inner = inner

    def started(self, value: str | None = None) -> None:
        self._inner.started(f"{value}/api/1.0/")


async def _remove_tree(path: Path) -> None:
    await anyio.to_thread.run_sync(functools.partial(shutil.rmtree, path, ignore_errors=True))


@attrs.frozen
class RunningEmulator:
    """An emulator served on loopback by `run_emulator`.

    Attributes:
        base_url: the API base URL, "http://127.0.0.1:PORT/api/1.0/".
        emulator: the RecuroEmulator (its log, faults, callbacks).
        download_base: the prefix of restored-file URLs, "http://127.0.0.1:PORT/download.php".
        origin: "http://127.0.0.1:PORT".
    """

    base_url: str
    emulator: RecuroEmulator
    download_base: str
    origin: str

    @property
    def api_key(self) -> str:
        """The first configured API key (the demo key by default)."""
        return next(iter(self.emulator.config.credentials))

    @property
    def api_secret(self) -> str:
        """The secret of `api_key`."""
        return self.emulator.config.credentials[self.api_key]

    def __repr__(self) -> str:
        return f"RunningEmulator(base_url={self.base_url!r})"


@contextlib.asynccontextmanager
async def run_emulator(
    config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningEmulator]:
    """Run an emulator on loopback for the duration of the block."""
    sock = bind_socket(host, port)  # a busy port raises OSError here, not inside a task group
    async with RecuroEmulator(config) as emulator, anyio.create_task_group() as tg:
        base_url = await tg.start(functools.partial(emulator.serve, sock=sock))
        origin = base_url.removesuffix("/api/1.0/")
        try:
            yield RunningEmulator(base_url, emulator, f"{origin}/download.php", origin)
        finally:
            tg.cancel_scope.cancel()
