"""The requests of one download: each GET sent, its failure classified, and the wait before the next.

httpx follows redirects (at most `max_redirects` hops) and drops `Authorization` on a hop to another
origin, which is what keeps an `OriginAuth` credential on its origin. A failure that another attempt may
cure (a connection refused or cut, 408, 429, 5xx) is a `Retryable`; `retry` counts it against the
attempts without progress and backs off (Retry-After honoured), or raises the public failure. 401, 403
and 410 mean the link no longer grants access: `LinkExpiredFailure` at once. A redirect to another
scheme, with an invalid Location, or past `max_redirects`: `DownloadFailure` at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import anyio
import httpx

from ._auth import OriginAuth
from ._body import read_excerpt
from ._clock import Clock
from ._download_options import DownloadOptions
from ._failures import DownloadFailure, HTTPStatusFailure, LinkExpiredFailure, TransportFailure
from ._retry import Attempts, Retryable, RetryPolicy, parse_retry_after
from ._transport import NEVER_SENT

__all__ = ["Requester", "safe_url"]

_log = logging.getLogger("_clientkit")

_EXPIRED_STATUSES: Final = frozenset({401, 403, 410})  # the link no longer grants access


def safe_url(url: httpx.URL) -> str:
    """`url` without query, fragment or user info, for messages and logs (queries may hold tokens)."""
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


class Requester:
    """Sends a download's GETs to one URL and turns their failures into attempts or public failures."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: httpx.URL,
        *,
        auth: httpx.Auth | None,
        options: DownloadOptions,
        clock: Clock,
        part_path: Callable[[], str | None],
    ) -> None:
        self._client, self._url, self._auth = client, url, auth
        self._opts, self._clock, self._part_path = options, clock, part_path
        self._timeout = httpx.Timeout(options.timeout)
        self._policy = RetryPolicy(
            max_retries=options.max_retries,
            base=options.backoff_base,
            cap=options.backoff_cap,
            max_retry_after=options.max_retry_after,
        )

    @contextlib.asynccontextmanager
    async def open(self, headers: dict[str, str]) -> AsyncIterator[httpx.Response]:
        """Send a GET for the download; httpx follows redirects (dropping Authorization elsewhere)."""
        url, opts = self._url, self._opts
        request = self._client.build_request("GET", url, headers=headers, timeout=self._timeout)
        extra: dict[str, Any] = {} if self._auth is None else {"auth": self._auth}
        try:
            response = await self._client.send(
                request, stream=True, follow_redirects=opts.follow_redirects, **extra
            )
        except httpx.TooManyRedirects as exc:
            limit = min(opts.max_redirects, self._client.max_redirects)
            raise DownloadFailure(
                f"more than {limit} redirects", part_path=self._part_path()
            ) from exc
        except httpx.UnsupportedProtocol as exc:  # `url` is http(s): a redirect went elsewhere
            raise DownloadFailure(
                "a redirect to an unsupported scheme (only http and https are followed)",
                part_path=self._part_path(),
            ) from exc
        except httpx.RemoteProtocolError as exc:
            # httpx's own words for a Location that is no URL (pinned by a test of the download)
            if str(exc).startswith("Invalid URL in location header"):
                raise DownloadFailure(
                    "a redirect with an invalid Location", part_path=self._part_path()
                ) from exc
            raise Retryable(f"{type(exc).__name__} from {url.host}", request_sent=True) from exc
        except NEVER_SENT as exc:
            raise Retryable(
                f"{type(exc).__name__} connecting to {url.host}", request_sent=False
            ) from exc
        except httpx.TransportError as exc:
            raise Retryable(f"{type(exc).__name__} from {url.host}", request_sent=True) from exc
        try:
            if len(response.history) > opts.max_redirects:
                raise DownloadFailure(
                    f"more than {opts.max_redirects} redirects", part_path=self._part_path()
                )
            yield response
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        secrets = self._auth.secrets() if isinstance(self._auth, OriginAuth) else ()
        excerpt = await read_excerpt(response, secrets)
        if status in _EXPIRED_STATUSES:
            # A signed link that expired (or access withdrawn): asking the same URL again cannot help.
            raise LinkExpiredFailure(status, excerpt, part_path=self._part_path())
        if status in {408, 429} or status >= 500:
            raise Retryable(
                f"HTTP {status}",
                request_sent=True,
                status=status,
                excerpt=excerpt,
                retry_after=parse_retry_after(response.headers),
            )
        raise HTTPStatusFailure(status, excerpt, part_path=self._part_path())

    async def retry(
        self, attempts: Attempts, failure: Retryable, position: int, *, on_disk: int
    ) -> None:
        """Count a failed attempt that reached `position`; raise if no attempt is left, else back off."""
        if not attempts.failed(position):
            if failure.status is not None:
                raise HTTPStatusFailure(
                    failure.status, failure.excerpt, part_path=self._part_path()
                ) from failure
            raise TransportFailure(
                f"download of {safe_url(self._url)} failed {attempts.failures} times in a row "
                f"without progress: {failure.message}",
                request_sent=failure.request_sent,
            ) from failure.__cause__
        delay = self._policy.delay(attempts.failures - 1)
        honoured = self._policy.honour(failure.retry_after)
        if honoured is not None:
            delay = max(delay, honoured)
        _log.debug(
            "download attempt failed; retrying",
            extra={
                "reason": failure.message,
                "attempt": attempts.failures,
                "delay": delay,
                "bytes_on_disk": on_disk,
            },
        )
        await self._clock.sleep(delay)
