"""`MediaCrushClient`: lifecycle, and one method per route.

Each method does the same five steps: validate, build, send, parse, structure. Wire rules live in
`_protocol`/`_converter`; retries and downloads in `_clientkit`; the upload byte budget in `_budget`;
this module only does I/O.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import attrs
import httpx

from _clientkit._clock import Clock, SystemClock
from _clientkit._download import DownloadOptions as _DownloadOptions
from _clientkit._download import download_file
from _clientkit._errormap import Call, translating
from _clientkit._lifecycle import HTTPClientLifecycle
from _clientkit._limiter import Ticket
from _clientkit._retry import RetryPolicy
from _clientkit._settings import origin_text, setting
from _clientkit._transport import ResponseParts, Retry, send

from . import _protocol, _validate
from ._budget import UploadBudget
from ._constants import (
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    LOGGER_NAME,
)
from ._errormap import FAILURE_ERRORS, status_error_class
from ._errors import (
    ConfigurationError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    WaitTimeoutError,
)
from ._hash import FileInput
from ._models import Album, ByteBudget, File, FileEntry, Status, UploadResult
from ._protocol import WireRequest
from ._source import ProgressCallback, UploadSource, open_source

__all__ = ["DownloadOptions", "DownloadProgress", "MediaCrushClient"]


@attrs.frozen
class DownloadOptions(_DownloadOptions):
    """How downloads run: `segments` (concurrent ranges, for a per-connection cap), `deadline`, and more.

    The fields and their defaults are those of the shared downloader (see its docstring).
    """


log = logging.getLogger(LOGGER_NAME)

CALL_DEADLINE_FACTOR: Final = 2.0
"""The default call deadline is this many times the read timeout."""
UPLOAD_DEADLINE_RATE: Final = 32 * 1024
"""An upload's call deadline grows by one second per this many bytes of its body."""

DownloadProgress = Callable[[int, int | None], object]
"""`progress(done_bytes, total_bytes_or_None)` for downloads."""

# the call a download's failures are reported under (the errors' `route`, messages)
_DOWNLOAD: Final = Call("download", "download")


class _BudgetSlot:
    """One upload's view of the byte budget, in the shape of `_clientkit`'s `Limiter`.

    `send()` acquires it before every attempt (each attempt sends the bytes again and the server counts
    them again), releases it after, and pauses it on a 420 refusal, so uploads wait out the server's
    window instead of retrying at once.
    """

    def __init__(self, budget: UploadBudget, size: int) -> None:
        self._budget = budget
        self._size = size
        self._attempts = 0

    async def acquire(self) -> Ticket:
        await self._budget.reserve(self._size)
        self._attempts += 1
        return Ticket(self._attempts)

    async def release(self, ticket: Ticket, *, abandoned: bool = False) -> None:  # noqa: ARG002
        self._budget.settle()

    async def pause(self, seconds: float) -> None:  # noqa: ARG002 - the budget knows its window better
        self._budget.refused()


def _classify(parts: ResponseParts) -> Retry | None:
    """Retry the replies the error table maps to `ServerError` (5xx, also when wrapped in `x-status`)."""
    status = _protocol.effective_status(parts.status_code, parts.content)
    return Retry() if issubclass(status_error_class(status), ServerError) else None


def _classify_upload(parts: ResponseParts) -> Retry | None:
    """For uploads, a 420 is also a refusal: the budget pauses uploads, then the upload is sent again."""
    status = _protocol.effective_status(parts.status_code, parts.content)
    if issubclass(status_error_class(status), RateLimitedError):
        return Retry(refusal=True)
    return _classify(parts)


class MediaCrushClient(HTTPClientLifecycle):
    """An async client for the MediaCrush API.

    Use it as an async context manager (or call `aclose()`); it can be opened once. Uploads are paced by a
    byte budget (`byte_budget`, default 250,000,000 bytes per 3600 s, as the server counts per address) so
    that the client does not meet the server's 420 by itself; a 420 pauses all uploads of this client for
    the rest of the window and the upload is tried again after the pause (up to `max_retries` times).

    Retries (full-jitter backoff, `max_retries`) cover connection failures and 5xx replies. Uploads,
    flags and deletes are retried even after the request may have reached the server: the file id is
    the content hash, so a repeated upload is answered 409 "already uploaded" (reported as
    `already_uploaded=True`), and flags and deletes are idempotent (a delete whose retry meets 404 is a
    success). `create_album` makes a new random id each time, so it is retried only when the request
    certainly never left.

    `cors_status=True` sends `X-CORS-Status: 1`; the server then answers 200 with the real status in the
    body's `x-status`, and this client gives the same results and exceptions as without it.

    Timeouts: `timeout` bounds each network operation; `call_deadline` bounds each attempt of a call as a
    whole (connect, send, the whole response body), so a body trickled byte by byte cannot hold a
    call: default twice the read timeout (120 s). An upload's deadline grows by one second per
    `UPLOAD_DEADLINE_RATE` bytes of its body (32 KiB/s). A deadline hit is a `TransportError` with
    `request_sent=True`.

    `base_url` is the argument when given, else the environment variable `MEDIACRUSH_BASE_URL` (as the
    `mediacrush` command reads it; an empty value counts as unset), else https://mediacru.sh.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        cors_status: bool = False,
        byte_budget: ByteBudget | None = ByteBudget(),  # noqa: B008 - a frozen value, safe as a default
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        call_deadline: float | None = None,
        download_options: DownloadOptions | None = None,
    ) -> None:
        self._base_url = _base_url(base_url)
        self._origin = origin_text(self._base_url)
        if call_deadline is None:
            read = timeout.read if isinstance(timeout, httpx.Timeout) else timeout
            read = read if read is not None else DEFAULT_TIMEOUT.read
            self._call_deadline = CALL_DEADLINE_FACTOR * (read or 60.0)
        else:
            self._call_deadline = _validate.poll_interval(call_deadline, "call_deadline")
        if not isinstance(cors_status, bool):
            raise InvalidArgumentError("cors_status", f"must be True or False, got {cors_status!r}")
        if byte_budget is not None and not isinstance(byte_budget, ByteBudget):
            raise InvalidArgumentError(
                "byte_budget", f"must be a ByteBudget or None, got {byte_budget!r}"
            )
        self._cors_status = cors_status
        self._clock: Clock = clock or SystemClock()
        if download_options is not None and not isinstance(download_options, _DownloadOptions):
            raise InvalidArgumentError(
                "download_options", f"must be a DownloadOptions, got {download_options!r}"
            )
        self._download_options = download_options or DownloadOptions()
        try:
            self._policy = RetryPolicy(max_retries=max_retries)
        except ValueError as exc:
            raise InvalidArgumentError("max_retries", str(exc)) from exc
        self._byte_budget = byte_budget
        self._budget = UploadBudget(byte_budget or ByteBudget(max_bytes=None), self._clock)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    # ------------------------------------------------------------------ lifecycle

    def __repr__(self) -> str:
        return (
            f"<MediaCrushClient base_url={self._base_url!r} cors_status={self._cors_status} "
            f"state={self._state.value}>"
        )

    @property
    def base_url(self) -> str:
        """The server's base URL (no trailing slash)."""
        return self._base_url

    @property
    def byte_budget(self) -> ByteBudget | None:
        """The upload byte budget this client paces itself by (None: no pacing)."""
        return self._byte_budget

    # ------------------------------------------------------------------ sending

    async def _send(
        self,
        wire: WireRequest,
        *,
        safe: bool,
        content: Callable[[], AsyncIterator[bytes]] | None = None,
        budget: _BudgetSlot | None = None,
        attempts: list[int] | None = None,
        body_size: int = 0,
    ) -> ResponseParts:
        """Send one call with retries; transport failures become `TransportError`."""
        self._check_open()
        url = f"{self._base_url}{wire.path}"

        def build() -> httpx.Request:
            if attempts is not None:
                attempts.append(1)
            return self._http.build_request(
                wire.method,
                url,
                params=list(wire.params) or None,
                data=dict(wire.form) if wire.form else None,
                headers=list(wire.headers),
                content=content() if content is not None else None,
            )

        with translating(FAILURE_ERRORS, Call(wire.route, f"{wire.route} to {self._origin}")):
            parts = await send(
                self._http,
                build,
                safe=safe,
                policy=self._policy,
                classify=_classify if budget is None else _classify_upload,
                limiter=budget,
                refusal_pause=self._budget.period,
                clock=self._clock,
                deadline=self._call_deadline + body_size / UPLOAD_DEADLINE_RATE,
                log=log,
                action=wire.route,
            )
        log.debug(
            "mediacrush reply received",
            extra={"route": wire.route, "status": parts.status_code},
        )
        return parts

    async def _get_each(self, wires: Iterable[WireRequest]) -> list[ResponseParts]:
        return [await self._send(wire, safe=True) for wire in wires]

    # ------------------------------------------------------------------ uploads

    async def upload_file(
        self,
        file: FileInput,
        *,
        filename: str | None = None,
        progress: ProgressCallback | None = None,
        skip_existing: bool = True,
    ) -> UploadResult:
        """Upload a file (a path, bytes or a binary file object), streamed as multipart.

        The file is read in chunks and never held in memory whole. With `skip_existing` (the default) the
        content hash is computed locally first and `/exists` asked, as the official clients did: a file
        the server already holds is not sent again (`already_uploaded=True`, `file=None`). A 409 reply is
        a success too, with the server's object when it is a real file object. `progress(sent, total)`
        is called as the file's bytes go out. `filename` defaults to the path's or file object's name.
        An empty file (0 bytes) raises `InvalidArgumentError` before any request.
        """
        self._check_open()
        source = await open_source(file, filename=filename)
        try:
            if source.size == 0:
                raise InvalidArgumentError("file", "is empty (0 bytes): there is nothing to upload")
            self._budget.check_size(source.size)
            local_hash = await source.content_hash() if skip_existing else None
            if local_hash is not None and await self.exists(local_hash):
                log.debug("upload skipped: the server has the file", extra={"hash": local_hash})
                return UploadResult(hash=local_hash, already_uploaded=True, file=None)
            return await self._upload_source(source, local_hash, progress)
        finally:
            await source.aclose()

    async def _upload_source(
        self, source: UploadSource, local_hash: str | None, progress: ProgressCallback | None
    ) -> UploadResult:
        boundary = secrets.token_hex(16)
        head, tail = _protocol.multipart_frame(
            boundary=boundary, filename=source.filename, content_type=source.content_type
        )
        wire = _protocol.upload_file_request(
            boundary=boundary,
            content_length=len(head) + source.size + len(tail),
            cors_status=self._cors_status,
        )

        async def body() -> AsyncIterator[bytes]:
            yield head
            sent = 0
            if progress is not None:
                progress(0, source.size)
            async for chunk in source.chunks():
                yield chunk
                sent += len(chunk)
                if progress is not None:
                    progress(sent, source.size)
            yield tail

        parts = await self._send(
            wire,
            safe=True,
            content=body,
            budget=_BudgetSlot(self._budget, source.size),
            body_size=source.size,
        )
        return self._parse_upload(parts, "upload_file", local_hash)

    def _parse_upload(self, parts: ResponseParts, route: str, expected: str | None) -> UploadResult:
        try:
            return _protocol.parse_upload(
                parts.status_code, parts.content, route=route, expected_hash=expected
            )
        except RateLimitedError as exc:
            # `send()` pauses before each retry; the last refusal pauses later uploads too.
            self._budget.refused()
            exc.retry_after = self._budget.paused_for()
            raise

    async def upload_url(self, url: str) -> UploadResult:
        """Ask the server to fetch `url` and store it (`POST /api/upload/url`).

        The server downloads the file during the request (50 MB at most: `TooLargeError`; a bad or
        unreachable URL: `InvalidURLError`; a remote 404: `NotFoundError`). Its size is not known here,
        so it is not counted in the byte budget, but a 420 still pauses uploads.
        """
        wire = _protocol.upload_url_request(
            _validate.upload_url(url), cors_status=self._cors_status
        )
        self._check_open()
        parts = await self._send(wire, safe=True, budget=_BudgetSlot(self._budget, 0))
        return self._parse_upload(parts, "upload_url", None)

    # ------------------------------------------------------------------ reading

    async def info(self, hash: str) -> File | Album:  # noqa: A002 - the SPEC's name
        """The file or album object of `hash` (`GET /api/<hash>`), chosen by its `type`.

        A file whose processing failed has no object any more: the server answers its HTML 500 page
        (`ServerError`); `status()` tells the failure.
        """
        checked = _validate.file_hash(hash)
        parts = await self._send(
            _protocol.info_request(checked, cors_status=self._cors_status), safe=True
        )
        return _protocol.parse_info(parts.status_code, parts.content, hash_=checked)

    async def info_many(self, hashes: Iterable[str]) -> dict[str, File | Album | None]:
        """Objects for many hashes (`GET /api/info?list=`), None for unknown, failed or emptied ones.

        Long lists are split over several requests so that no URL gets too long.
        """
        checked = _validate.hash_list(hashes)
        result: dict[str, File | Album | None] = {}
        for wire in _protocol.info_many_requests(checked, cors_status=self._cors_status):
            chunk = _list_of(wire)
            parts = await self._send(wire, safe=True)
            result.update(_protocol.parse_info_many(parts.status_code, parts.content, hashes=chunk))
        return result

    async def url_info(self, urls: Iterable[str]) -> dict[str, File | None]:
        """For each URL, the file it was uploaded as through `upload_url` on this server, or None."""
        checked = _validate.url_list(urls)
        result: dict[str, File | None] = {}
        for wire in _protocol.url_info_requests(checked, cors_status=self._cors_status):
            chunk = dict(wire.form)["list"].split(",")
            parts = await self._send(wire, safe=True)
            result.update(_protocol.parse_url_info(parts.status_code, parts.content, urls=chunk))
        return result

    async def exists(self, hash: str) -> bool:  # noqa: A002 - the SPEC's name
        """Whether a *file* with this hash exists (albums and failed files do not count)."""
        checked = _validate.file_hash(hash)
        parts = await self._send(
            _protocol.exists_request(checked, cors_status=self._cors_status), safe=True
        )
        return _protocol.parse_exists(parts.status_code, parts.content)

    async def status(self, hash: str) -> Status:  # noqa: A002 - the SPEC's name
        """The processing status of a file; an album raises `UnsupportedMediaError` (415)."""
        checked = _validate.file_hash(hash)
        parts = await self._send(
            _protocol.status_request(checked, cors_status=self._cors_status), safe=True
        )
        return _protocol.parse_status(parts.status_code, parts.content, hash_=checked)

    async def status_many(self, hashes: Iterable[str]) -> dict[str, Status | None]:
        """Statuses of many files (`GET /api/status?list=`), None for unknown hashes.

        Long lists are split over several requests. The server fails (500, `ServerError`) when the
        list holds an album hash.
        """
        checked = _validate.hash_list(hashes)
        result: dict[str, Status | None] = {}
        for wire in _protocol.status_many_requests(checked, cors_status=self._cors_status):
            chunk = _list_of(wire)
            parts = await self._send(wire, safe=True)
            result.update(
                _protocol.parse_status_many(parts.status_code, parts.content, hashes=chunk)
            )
        return result

    async def get_flags(self, hash: str) -> dict[str, bool]:  # noqa: A002 - the SPEC's name
        """The display flags of a file (autoplay, loop, mute for videos; nsfw for all)."""
        checked = _validate.file_hash(hash)
        parts = await self._send(
            _protocol.flags_request(checked, cors_status=self._cors_status), safe=True
        )
        return _protocol.parse_flags(parts.status_code, parts.content)

    # ------------------------------------------------------------------ changing

    async def set_flags(self, hash: str, **flags: bool) -> dict[str, bool]:  # noqa: A002
        """Change flags (e.g. `nsfw=True`); returns every flag after the change.

        Names are checked against the known flags (autoplay, loop, mute, nsfw) and values must be bools,
        before any request; each is sent as exactly "true" or "false" (the server reads anything but
        "true" as false). Only the uploading address may do this (`NotOwnerError`); a flag the file's
        type lacks is refused with `UnsupportedMediaError` and nothing changes.
        """
        checked = _validate.file_hash(hash)
        wire = _protocol.set_flags_request(
            checked, _validate.flags(flags), cors_status=self._cors_status
        )
        parts = await self._send(wire, safe=True)
        return _protocol.parse_flags(parts.status_code, parts.content, route="set_flags")

    async def delete(self, hash: str) -> None:  # noqa: A002 - the SPEC's name
        """Delete a file or album (`DELETE /api/<hash>`); only the uploading address may.

        Deleting a file removes it for everyone who uploaded the same bytes, and from every album.
        """
        checked = _validate.file_hash(hash)
        attempts: list[int] = []
        parts = await self._send(
            _protocol.delete_request(checked, cors_status=self._cors_status),
            safe=True,
            attempts=attempts,
        )
        try:
            _protocol.parse_delete(parts.status_code, parts.content)
        except NotFoundError:
            if len(attempts) > 1:  # an earlier attempt reached the server and deleted it
                return
            raise

    async def create_album(self, hashes: Iterable[str]) -> str:
        """Make an album of 1 to 1024 files, in order (repeats allowed); returns its hash.

        Not retried once the request may have reached the server: each call makes a new album.
        """
        checked = _validate.album_hashes(hashes)
        parts = await self._send(
            _protocol.album_create_request(checked, cors_status=self._cors_status), safe=False
        )
        return _protocol.parse_album_create(parts.status_code, parts.content)

    # ------------------------------------------------------------------ helpers

    async def wait(
        self,
        hash: str,  # noqa: A002 - the SPEC's name
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: float | None = None,  # noqa: ASYNC109 - the signature SPEC section 3 fixes
        on_status: Callable[[Status], object] | None = None,
    ) -> Status:
        """Poll the status until it is terminal (done, error, timeout, unrecognised, internal_error).

        `ready` is playable but not final, so polling goes on through it (unlike PyCrush, which stopped
        on `pending`, and mediacrush.js, which stopped after one poll). Returns the terminal `Status`;
        check `status.status` for a failure. Raises `WaitTimeoutError` after `timeout` seconds.
        """
        checked = _validate.file_hash(hash)
        interval = _validate.poll_interval(poll_interval)
        limit = _validate.timeout(timeout)
        deadline = None if limit is None else self._clock.monotonic() + limit
        while True:
            current = await self.status(checked)
            if on_status is not None:
                on_status(current)
            if current.status.is_terminal:
                return current
            if deadline is None:
                await self._clock.sleep(interval)
                continue
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(
                    hash=checked, last_status=current.raw_status, timeout=limit or 0.0
                )
            await self._clock.sleep(min(interval, remaining))

    async def download(
        self,
        file_entry_or_url: FileEntry | str,
        dest: str | os.PathLike[str],
        *,
        resume: bool = True,
        progress: DownloadProgress | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Download a stored file (a `FileEntry` or a URL) into `dest`; returns the final path.

        `dest` is a directory (the file is named by the server) when it names an existing directory or
        ends with a path separator (`"out/"`, created if missing); otherwise it is the file path. An
        existing file is never replaced: `DestinationExistsError`, unless `overwrite=True`.
        Resumable (`.part` file, Range/If-Range) and verified. A `FileEntry` without a `url` is
        fetched from this server by its `file` path. Downloads are not API calls: no budget applies.
        An HTTP error status raises the class of that status (a derived file that is listed but not
        made yet: `NotFoundError`); an integrity failure raises `DownloadError`, a full disk
        `DiskFullError` (the `.part` kept for a resume).
        """
        self._check_open()
        url = self._download_url(file_entry_or_url)
        if not isinstance(overwrite, bool):
            raise InvalidArgumentError("overwrite", f"must be True or False, got {overwrite!r}")
        with translating(FAILURE_ERRORS, _DOWNLOAD):
            path = await download_file(
                self._http,
                url,
                dest,
                resume=resume,
                progress=progress,
                options=self._download_options,
                clock=self._clock,
                overwrite=overwrite,
            )
        return Path(path)

    def _download_url(self, target: FileEntry | str) -> str:
        field = "file_entry_or_url"
        if isinstance(target, FileEntry):
            raw = target.url or target.file
        elif isinstance(target, str):
            raw = target
        else:
            raise InvalidArgumentError(
                field, f"must be a FileEntry or a URL, got {type(target).__name__}"
            )
        if raw.startswith("/") and not raw.startswith("//"):
            raw = f"{self._base_url}{raw}"
        url = _validate.upload_url(raw, field)
        parts = urlsplit(url)
        if parts.scheme.lower() == "http" and not _validate.is_loopback_host(parts.hostname or ""):
            raise InvalidArgumentError(
                field, f"must be https:// (http:// only for loopback), got {url!r}"
            )
        return url


def _base_url(explicit: str | None) -> str:
    """The argument, else $MEDIACRUSH_BASE_URL (empty = unset), else the public server; validated."""
    value, variable = setting(explicit, BASE_URL_ENV, DEFAULT_BASE_URL)
    try:
        return _validate.base_url(value)
    except ConfigurationError as exc:
        if variable is None:
            raise
        raise ConfigurationError(f"${variable}: {exc}") from exc


def _list_of(wire: WireRequest) -> list[str]:
    return dict(wire.params)["list"].split(",")
