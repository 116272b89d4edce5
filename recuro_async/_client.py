"""`RecuroClient`: lifecycle, and one method per API action.

Each method does the same five steps: validate, build, send, parse, structure. Wire rules live in
`_protocol`/`_converter`; limiting, retries and downloads in `_clientkit`; this module only does I/O.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx

from _clientkit._auth import OriginAuth
from _clientkit._clock import Clock, SystemClock
from _clientkit._download import DownloadOptions as _DownloadOptions
from _clientkit._download import download_file
from _clientkit._errormap import Call, translating
from _clientkit._lifecycle import HTTPClientLifecycle
from _clientkit._limiter import Limiter, Pacing, SlidingWindowLimiter, slot
from _clientkit._redact import Secret
from _clientkit._redis_limiter import RedisLimiter
from _clientkit._retry import RetryPolicy
from _clientkit._settings import origin_text, setting
from _clientkit._transport import send

from . import _protocol, _validate
from ._constants import (
    BASE_URL_ENV,
    CALL_DEADLINE_FACTOR,
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    MAX_POLL_INTERVAL,
)
from ._enums import Filter, OutputFormat, State
from ._errormap import FAILURE_ERRORS
from ._errors import (
    ConfigurationError,
    InvalidArgumentError,
    MediaNotFoundError,
    RecuroError,
    ResponseFormatError,
    WaitTimeoutError,
)
from ._models import FilterInfo, Media, OutputFormatInfo, Progress, RateLimit
from ._protocol import Action, Credentials

__all__ = ["DownloadOptions", "RecuroClient"]


@attrs.frozen
class DownloadOptions(_DownloadOptions):
    """How downloads run: `segments` (concurrent ranges, for a per-connection cap), `deadline`, and more.

    The fields and their defaults are those of the shared downloader (see its docstring).
    """


log = logging.getLogger("recuro_async")

REDIS_URL_ENV = "RECURO_REDIS_URL"
"""With no `limiter=`, a client shares its account's budget through Redis at this URL (if set)."""
REDIS_KEY_ENV = "RECURO_REDIS_KEY"
"""The Redis key of that shared budget (default ``recuro:<api key>``)."""

_SAFE_ACTIONS = frozenset(
    {
        Action.LIST_MEDIA,
        Action.LIST_FILTERS,
        Action.LIST_OUTPUT_FORMATS,
        Action.GET_PROGRESS,
        Action.DELETE_MEDIA,
    }
)
# the call a download's failures are reported under (`TransportError.action`, messages)
_DOWNLOAD = Call("download", "download")

ProgressCallback = Callable[[int, int | None], object]


class RecuroClient(HTTPClientLifecycle):
    """An async client for the Recuro Media API 1.0.

    Use it as an async context manager (or call `aclose()`). All calls share one limiter that keeps
    every sliding window of `rate_limit.period` seconds at or below `rate_limit.max_requests` requests,
    retries included, and paces them (the limit spread evenly over the period, at most 10 at once);
    pass `limiter=` to share one account's budget between clients, e.g. a `RedisLimiter` shared by
    several processes (or pass `redis_url=`, else set RECURO_REDIS_URL, and optionally RECURO_REDIS_KEY:
    the client then opens and closes that limiter itself).

    Timeouts: `timeout` bounds each network operation (connect at most 10 s, each read, each write);
    `call_deadline` bounds each attempt of an API call as a whole (connect, send and the whole
    response body), so a server trickling a body byte by byte cannot hold a call: default twice
    `timeout` (60 s). A deadline hit is a `TransportError` with `request_sent=True`, retried only
    for safe calls. Downloads are bounded by `DownloadOptions.deadline` instead (off by default).

    Configuration, the same as the `recuro` command's: each of `api_key`, `api_secret` and `base_url` is
    the argument when given, else the environment variable `RECURO_API_KEY`, `RECURO_API_SECRET` or
    `RECURO_BASE_URL` (an empty value counts as unset), else (base URL only) the production URL.
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        base_url: str | None = None,
        rate_limit: RateLimit | None = RateLimit(),  # noqa: B008 - a frozen value, safe as a default
        limiter: Limiter | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        download_options: DownloadOptions | None = None,
        count_downloads: bool = False,
        call_deadline: float | None = None,
        redis_url: str | None = None,
    ) -> None:
        key, secret = _validate.credentials(api_key, api_secret)
        timeout = _validate.positive_seconds(timeout, "timeout")
        self._call_deadline = (
            CALL_DEADLINE_FACTOR * timeout
            if call_deadline is None
            else _validate.positive_seconds(call_deadline, "call_deadline")
        )
        self._credentials = Credentials(key, Secret(secret))
        self._base_url = _base_url(base_url)
        self._origin = origin_text(self._base_url)
        self._clock: Clock = clock or SystemClock()
        self._policy = RetryPolicy(max_retries=max_retries)
        self._rate_limit = rate_limit
        self._owned_limiter: RedisLimiter | None = None
        redis_url = redis_url or os.environ.get(REDIS_URL_ENV)
        if limiter is None and rate_limit is not None and redis_url:
            # A service's workers share one account's budget through Redis (README: "Several
            # processes, one account"); this client opened the connection, so it closes it.
            limiter = self._owned_limiter = RedisLimiter.from_url(
                redis_url,
                key=os.environ.get(REDIS_KEY_ENV) or f"recuro:{key}",
                max_requests=rate_limit.max_requests,
                period=rate_limit.period,
                grace=timeout,
                lease=max(120.0, 2 * self._call_deadline),  # longer than any attempt
            )
        if limiter is not None:
            self._limiter: Limiter | None = limiter
        elif rate_limit is not None:
            # Paced (the limit spread over its period, bursts of at most 10) on the real clock only:
            # aiolimiter reads the event loop's time, which an injected clock does not drive.
            pacing = (
                None
                if clock is not None
                else Pacing.even(rate_limit.max_requests, rate_limit.period)
            )
            self._limiter = SlidingWindowLimiter(
                rate_limit.max_requests,
                rate_limit.period,
                clock=self._clock,
                grace=timeout,
                pacing=pacing,
            )
        else:
            self._limiter = None
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, DEFAULT_CONNECT_TIMEOUT)),
            follow_redirects=False,
        )
        self._auth = OriginAuth(self._base_url, Secret(self._credentials.header_value()))
        self._download_options = download_options or DownloadOptions()
        self._count_downloads = count_downloads
        self._known_filters: tuple[str, ...] | None = None
        self._known_formats: tuple[str, ...] | None = None

    # ------------------------------------------------------------------ lifecycle

    def __repr__(self) -> str:
        return f"<RecuroClient base_url={self._base_url!r} api_key={self._credentials.key!r} state={self._state.value}>"

    async def aclose(self) -> None:
        """Close the HTTP client (if created here) and the Redis limiter opened from RECURO_REDIS_URL."""
        await super().aclose()
        if self._owned_limiter is not None:
            owned, self._owned_limiter = self._owned_limiter, None
            await owned.aclose()

    @property
    def base_url(self) -> str:
        """The API base URL requests are POSTed to."""
        return self._base_url

    @property
    def limiter(self) -> Limiter | None:
        """The limiter every API call of this client goes through (share it with other clients)."""
        return self._limiter

    @property
    def _secrets(self) -> tuple[str, str]:
        """What must never come back in an error: the Authorization value and the secret alone."""
        return (self._credentials.header_value(), self._credentials.secret.reveal())

    # ------------------------------------------------------------------ the five steps

    async def _call(self, action: Action, params: Mapping[str, Any] | None = None) -> Any:
        """Build, send (limiter + retries) and parse one API call; returns decoded JSON or None."""
        self._check_open()
        request = lambda: _protocol.build_request(self._base_url, self._credentials, action, params)  # noqa: E731
        with translating(FAILURE_ERRORS, Call(action.value, f"{action.value} to {self._origin}")):
            parts = await send(
                self._http,
                request,
                safe=action in _SAFE_ACTIONS,
                policy=self._policy,
                classify=_protocol.classify,
                limiter=self._limiter,
                refusal_pause=self._rate_limit.period if self._rate_limit else 60.0,
                clock=self._clock,
                deadline=self._call_deadline,
                log=log,
                action=action.value,
            )
        return _protocol.parse_response(action, parts, secrets=self._secrets)

    # ------------------------------------------------------------------ actions

    async def list_media(self) -> list[Media]:
        """All media uploaded to the account (ListMedia)."""
        data = await self._call(Action.LIST_MEDIA)
        return _protocol.structure_as(data, list[Media], Action.LIST_MEDIA, secrets=self._secrets)

    async def list_filters(self) -> list[FilterInfo]:
        """The filters the service offers (ListFilters); later validation accepts exactly these."""
        data = await self._call(Action.LIST_FILTERS)
        infos = _protocol.structure_as(
            data, list[FilterInfo], Action.LIST_FILTERS, secrets=self._secrets
        )
        if infos:
            self._known_filters = tuple(info.name for info in infos)
        return infos

    async def list_output_formats(self) -> list[OutputFormatInfo]:
        """The output formats the service offers (ListOutputFormats); validation then accepts these."""
        data = await self._call(Action.LIST_OUTPUT_FORMATS)
        infos = _protocol.structure_as(
            data, list[OutputFormatInfo], Action.LIST_OUTPUT_FORMATS, secrets=self._secrets
        )
        if infos:
            self._known_formats = tuple(info.name for info in infos)
        return infos

    async def upload_media(
        self,
        original_file_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        notify_url: str | None = None,
    ) -> str:
        """Ask the service to fetch and analyse a media file (UploadMedia); returns its file_id.

        Not retried once the request may have reached the service: a `TransportError` with
        `request_sent=True` means the outcome is unknown (check `list_media()` before trying again).
        """
        params = {
            "original_file_url": _validate.url(original_file_url, "original_file_url"),
            "username": _validate.optional_text(username, "username"),
            "password": _validate.optional_text(password, "password"),
            "notify_url": _validate.optional_url(notify_url, "notify_url"),
        }
        data = await self._call(Action.UPLOAD_MEDIA, params)
        file_id = data.get("file_id") if isinstance(data, dict) else None
        if not isinstance(file_id, str) or not file_id:
            raise ResponseFormatError(
                "UploadMedia answered without a file_id",
                path_errors=["$.file_id"],
                action="UploadMedia",
            )
        return file_id

    async def start_job(
        self,
        file_id: str,
        *,
        output_format: OutputFormat | str,
        filters: Sequence[Filter | str],
        output_scaling: str | int | None = None,
        notify_url: str | None = None,
    ) -> None:
        """Start restoring a media file that reached MediaCompleted (StartJob).

        Not retried once the request may have reached the service (a duplicate job costs money).
        """
        params = {
            "file_id": _validate.file_id(file_id),
            "output_format": _validate.output_format(output_format, self._known_formats),
            "filters": _validate.filters(filters, self._known_filters),
            "output_scaling": _validate.output_scaling(output_scaling),
            "notify_url": _validate.optional_url(notify_url, "notify_url"),
        }
        await self._call(Action.START_JOB, params)

    async def get_progress(self, file_id: str) -> Progress:
        """The state of a media file and its progress within that state (GetProgress)."""
        data = await self._call(Action.GET_PROGRESS, {"file_id": _validate.file_id(file_id)})
        return _protocol.structure_as(data, Progress, Action.GET_PROGRESS, secrets=self._secrets)

    async def delete_media(self, file_id: str, *, missing_ok: bool = True) -> None:
        """Delete a media file and everything derived from it (DeleteMedia); safe to repeat.

        Deleting an id the service no longer knows is success (a retried or repeated delete finds it
        gone); pass `missing_ok=False` to get the `MediaNotFoundError` instead.
        """
        try:
            await self._call(Action.DELETE_MEDIA, {"file_id": _validate.file_id(file_id)})
        except MediaNotFoundError:
            if not missing_ok:
                raise
            log.debug("DeleteMedia found the media already gone", extra={"action": "DeleteMedia"})

    def validate_job(
        self,
        *,
        output_format: OutputFormat | str,
        filters: Iterable[Filter | str],
        output_scaling: str | int | None = None,
    ) -> tuple[str, list[str], str | None]:
        """Check job settings without sending anything; returns them as they would go on the wire."""
        return (
            _validate.output_format(output_format, self._known_formats),
            _validate.filters(filters, self._known_filters),
            _validate.output_scaling(output_scaling),
        )

    # ------------------------------------------------------------------ helpers

    async def wait_for(
        self,
        file_id: str,
        state: State,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: float | None = None,  # noqa: ASYNC109 - the SPEC 2.1 signature
        on_progress: Callable[[Progress], object] | None = None,
    ) -> Progress:
        """Poll GetProgress until the media reaches `state` (or a later one); returns that Progress.

        The interval starts at `poll_interval` and grows by half each time nothing moved, up to
        `max(poll_interval, 60 s)`. Raises `WaitTimeoutError` after `timeout` seconds.
        """
        _validate.file_id(file_id)
        if not isinstance(state, State) or state is State.UNKNOWN:
            raise _invalid_state(state)
        if not poll_interval > 0:
            raise InvalidArgumentError("poll_interval", f"must be > 0, got {poll_interval!r}")
        deadline = None if timeout is None else self._clock.monotonic() + timeout
        interval = poll_interval
        last: Progress | None = None
        while True:
            progress = await self.get_progress(file_id)
            if on_progress is not None:
                on_progress(progress)
            if progress.state >= state:
                return progress
            moved = last is None or (progress.state, progress.progress) != (
                last.state,
                last.progress,
            )
            interval = (
                poll_interval
                if moved
                else min(interval * 1.5, max(poll_interval, MAX_POLL_INTERVAL))
            )
            last = progress
            if deadline is not None:
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0:
                    raise WaitTimeoutError(
                        file_id=file_id, state=state.value, last=progress.raw_state
                    )
                await self._clock.sleep(min(interval, remaining))
            else:
                await self._clock.sleep(interval)

    async def download(
        self,
        url: str,
        dest: str | os.PathLike[str],
        *,
        resume: bool = True,
        progress: ProgressCallback | None = None,
        reissue_of: str | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Download a restored file into `dest`; resumable, verified; returns the final path.

        `dest` is a directory (the file is named by the server) when it names an existing directory or
        ends with a path separator (`"restored/"`, created if missing); otherwise it is the file path.
        An existing file is never replaced: `DestinationExistsError`, unless `overwrite=True`.
        Restored-file URLs may be signed links that expire: a 401/403/410 raises
        `DownloadLinkExpiredError` at once (not retried), keeping the `.part`; fetch a fresh URL with
        `get_progress()` or `list_media()` and call `download(new_url, dest, reissue_of=old_url)` to
        resume from the bytes on disk (only if the file's validator still matches, checked with
        If-Range; otherwise it starts over). A full disk raises `DiskFullError`, the `.part` kept.
        The Authorization header goes only to the API's own origin, never to a redirect elsewhere.
        """
        self._check_open()
        checked = _validate.url(url, "url")
        if urlsplit(checked).scheme == "http" and not _validate.is_loopback_host(
            urlsplit(checked).hostname or ""
        ):
            raise InvalidArgumentError("url", "must be https:// (http:// only for loopback hosts)")
        earlier = None if reissue_of is None else _validate.url(reissue_of, "reissue_of")
        if not isinstance(overwrite, bool):
            raise InvalidArgumentError("overwrite", f"must be True or False, got {overwrite!r}")
        call = _DownloadCall(checked, dest, resume, progress, earlier, overwrite)
        with translating(FAILURE_ERRORS, _DOWNLOAD):
            if self._count_downloads and self._limiter is not None:
                async with slot(self._limiter):
                    path = await self._download(call)
            else:
                path = await self._download(call)
        return Path(path)

    async def _download(self, call: _DownloadCall) -> os.PathLike[str]:
        return await download_file(
            self._http,
            call.url,
            call.dest,
            auth=self._auth,
            resume=call.resume,
            progress=call.progress,
            options=self._download_options,
            clock=self._clock,
            reissue_of=call.reissue_of,
            overwrite=call.overwrite,
        )


@attrs.frozen
class _DownloadCall:
    """The checked arguments of one `download()` call."""

    url: str
    dest: str | os.PathLike[str]
    resume: bool
    progress: ProgressCallback | None
    reissue_of: str | None
    overwrite: bool


def _base_url(explicit: str | None) -> str:
    """The argument, else $RECURO_BASE_URL (empty = unset), else the production URL; validated."""
    value, variable = setting(explicit, BASE_URL_ENV, DEFAULT_BASE_URL)
    try:
        return _validate.base_url(value)
    except ConfigurationError as exc:
        if variable is None:
            raise
        raise ConfigurationError(f"${variable}: {exc}") from exc


def _invalid_state(state: object) -> RecuroError:
    allowed = ", ".join(s.value for s in State if s is not State.UNKNOWN)
    return InvalidArgumentError("state", f"must be a State, got {state!r}; allowed: {allowed}")
