"""Staging: making each input reachable by URL for the service to fetch.

URLs pass through unchanged. Local files are served by `LocalFileServer`, a small ASGI app run with uvicorn
(on loopback for the emulator, or on `--stage-bind` behind a public `--stage-url`): each file gets an
unguessable URL (`secrets.token_urlsafe`), answers GET and HEAD with Range, If-Range, ETag and
Last-Modified, and every request is written to an access log per token. The log is the evidence that the
service did (or did not) fetch an item's file, which reconciliation uses after an ambiguous UploadMedia.

`Stager` is the protocol: an S3-style stager that uploads and presigns plugs in the same way (it would
answer `fetches()` with None: it cannot tell). `PushStager` is the stager of a service that takes the bytes
(MediaCrush): it checks a file is readable and hands the adapter its `Path`.
"""

from __future__ import annotations

import email.utils
import errno
import logging
import mimetypes
import os
import secrets
import socket
import stat
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final, Protocol, Self, runtime_checkable

import anyio
import anyio.abc
import anyio.to_thread
import attrs

from _servekit._files import Source, select, send_file
from _servekit._http import Receive, Scope, Send, header_map, send_bytes
from _servekit._serve import KEEP_ALIVE, bind_socket, serve

__all__ = [
    "AccessRecord",
    "FetchHook",
    "HoldsFetches",
    "LocalFileServer",
    "PushStager",
    "StagedSource",
    "Stager",
    "is_url",
]

log = logging.getLogger("orchestrator")

READ_TIMEOUT: Final = 10.0
"""Seconds a client has to send a whole request (headers and body) once it connects or starts one."""
KEEP_ALIVE_TIMEOUT: Final = KEEP_ALIVE
"""Seconds an idle kept-alive connection stays open: longer than clients pool an idle connection (httpx
5 s), so the service's fetcher never reuses a connection we are closing (see `_servekit._serve`)."""


def is_url(text: str) -> bool:
    """True for an http(s) URL (passed to the service as it is)."""
    return text.lower().startswith(("http://", "https://"))


@attrs.frozen
class StagedSource:
    """A staged input: what the adapter's upload is handed, and the stager's token for it (None for URLs).

    `source` is the URL the service fetches (`LocalFileServer`), or the local path itself for a service
    that takes the bytes (`PushStager`).
    """

    source: Path | str
    token: str | None = None


@attrs.frozen
class AccessRecord:
    """One request for a staged file: when, from where, what range, and what was answered."""

    token: str
    at: float
    client: str
    method: str
    range: str | None
    status: int
    bytes_sent: int


class Stager(Protocol):
    """Makes local files reachable by URL for the service."""

    async def stage(self, path: Path, *, token: str | None = None) -> StagedSource:
        """A URL for `path`; pass an earlier `token` to serve the file at the same URL again."""
        ...

    def fetches(self, token: str) -> int | None:
        """How many complete or partial fetches of `token` were seen (None: the stager cannot tell)."""
        ...

    async def unstage(self, token: str) -> None:
        """Stop serving `token` (its item is done)."""
        ...


FetchHook = Callable[[str], Awaitable[bool]]
"""`await hook(token)` when the service starts fetching a staged file, before any byte is served; it
answers whether to serve it (False: answered 404)."""


@runtime_checkable
class HoldsFetches(Protocol):
    """A stager that serves the files itself and awaits a hook before serving each fetch: the batch can
    count fetches durably and hold them until their upload is answered (`_seal.py`). A fetch of a token
    unstaged while the hook ran is not served."""

    def set_fetch_hook(self, hook: FetchHook | None) -> None:
        """Await `hook(token)` whenever the service starts a GET of a staged file (False: refuse it)."""
        ...


def _readable(path: Path) -> Path:
    """`path` made absolute; `OSError` unless it is a readable regular file (blocking)."""
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
        raise OSError(code, "not a regular file", str(path))
    with path.open("rb") as handle:
        handle.read(1)
    return path.absolute()


class PushStager:
    """A `Stager` for services that take the bytes (MediaCrush): a local file is staged as its own path.

    Nothing is served; `stage()` only checks that the file can be read (an `OSError` fails its item), and
    the adapter's `upload()` streams the `Path` itself. `fetches()` answers None: there is no access log.
    """

    async def stage(self, path: Path, *, token: str | None = None) -> StagedSource:
        """The file's absolute path, after checking that it is a readable regular file."""
        source = await anyio.to_thread.run_sync(_readable, path)
        return StagedSource(source=source, token=token or secrets.token_urlsafe(9))

    def fetches(self, token: str) -> int | None:  # noqa: ARG002 - the Stager protocol
        """Unknown: nothing is served, so nothing is logged."""
        return None

    async def unstage(self, token: str) -> None:
        """Nothing to stop serving."""


class LocalFileServer(anyio.AsyncContextManagerMixin):
    """Serves staged local files (and any mounted ASGI app) over HTTP; an async context manager.

    `bind` is where it listens (port 0 picks a free one); `public_url` is where the service reaches it
    (default: the bound address). `on_access` is called with each `AccessRecord`. `on_fetch` (settable
    later with `set_fetch_hook`) is awaited with the token when a GET of a staged file arrives, before any
    byte is served: the place to make fetch evidence durable (the runner writes it to the journal), and
    to hold the fetch until the upload is answered (`_seal.py`); a token unstaged meanwhile answers 404.
    `read_timeout`: a client that has not sent a whole request (headers and body) this many seconds
    after connecting, or after starting its next request, is disconnected; idle kept-alive connections
    close after `keep_alive` seconds (`KEEP_ALIVE_TIMEOUT`). A 206 carries no `Accept-Ranges`, as
    from nginx (`accept_ranges_on_206` sends it).
    """

    def __init__(
        self,
        *,
        bind: tuple[str, int] = ("127.0.0.1", 0),
        public_url: str | None = None,
        on_access: Callable[[AccessRecord], object] | None = None,
        on_fetch: FetchHook | None = None,
        read_timeout: float = READ_TIMEOUT,
        keep_alive: float = KEEP_ALIVE_TIMEOUT,
        accept_ranges_on_206: bool = False,
    ) -> None:
        for name, value in (("read_timeout", read_timeout), ("keep_alive", keep_alive)):
            if not (isinstance(value, int | float) and 0 < value < float("inf")):
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
        self._read_timeout = float(read_timeout)
        self._keep_alive = float(keep_alive)
        self._accept_ranges_on_206 = accept_ranges_on_206
        self._bind = bind
        self._public_url = public_url.rstrip("/") if public_url else None
        self._on_access = on_access
        self._on_fetch = on_fetch
        self._files: dict[str, Path] = {}
        self._log: dict[str, list[AccessRecord]] = {}
        self._mounts: dict[str, Callable[..., Awaitable[None]]] = {}
        self._url: str | None = None
        self._preferred: int | None = None
        self.port: int | None = None  # the port it listens on, once running

    def __repr__(self) -> str:
        return f"<LocalFileServer url={self._url!r} files={len(self._files)}>"

    @property
    def url(self) -> str:
        """The public base URL (available once the server runs)."""
        if self._url is None:
            raise RuntimeError("the file server is not running")
        return self._url

    def prefer_port(self, port: int | None) -> None:
        """Listen on `port` if it is free (when `bind` asks for any port): a rerun at the killed run's
        address serves the URLs and receives the callbacks the service still has for it."""
        self._preferred = port

    def set_fetch_hook(self, hook: FetchHook | None) -> None:
        """Await `hook(token)` whenever the service starts a GET of a staged file (False: refuse it)."""
        self._on_fetch = hook

    def mount(self, prefix: str, app: Callable[..., Awaitable[None]]) -> str:
        """Serve `app` under `/prefix/`; returns the public URL of that prefix."""
        name = prefix.strip("/")
        if not name or "/" in name or name == "s":
            raise ValueError(
                f"a mount prefix must be one path segment other than 's', got {prefix!r}"
            )
        self._mounts[name] = app
        return f"{self.url}/{name}"

    # ------------------------------------------------------------------ lifecycle

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncIterator[Self]:
        host, port = self._bind
        if port == 0 and self._preferred:
            try:
                sock = bind_socket(host, self._preferred)
            except OSError:  # taken: any free port (callbacks meant for the old one are lost)
                sock = bind_socket(host, 0)
        else:
            sock = bind_socket(host, port)  # a busy port raises OSError here, not in the task group
        self.port = sock.getsockname()[1]
        async with anyio.create_task_group() as tg:
            origin = await tg.start(self._serve, sock)
            self._url = self._public_url or origin
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def _serve(self, sock: socket.socket, *, task_status: anyio.abc.TaskStatus[str]) -> None:
        await serve(
            self._app,
            sock=sock,
            keep_alive=self._keep_alive,
            read_timeout=self._read_timeout,
            graceful_shutdown=2.0,
            task_status=task_status,
        )

    # ------------------------------------------------------------------ the Stager protocol

    async def stage(self, path: Path, *, token: str | None = None) -> StagedSource:
        """Serve `path` at a new unguessable URL (or at the URL of an earlier `token`)."""
        resolved = await anyio.to_thread.run_sync(_resolve_file, path)  # one thread hop, not two
        token = token or secrets.token_urlsafe(24)
        self._files[token] = resolved
        name = urllib.parse.quote(resolved.name)
        return StagedSource(source=f"{self.url}/s/{token}/{name}", token=token)

    def fetches(self, token: str) -> int | None:
        """How many GET requests for `token` were answered with the file (200/206)."""
        return sum(
            1 for r in self._log.get(token, ()) if r.method == "GET" and r.status in (200, 206)
        )

    async def unstage(self, token: str) -> None:
        """Stop serving `token`."""
        self._files.pop(token, None)
        await anyio.lowlevel.checkpoint()

    def access_log(self, token: str) -> list[AccessRecord]:
        """Every request seen for `token`."""
        return list(self._log.get(token, ()))

    # ------------------------------------------------------------------ HTTP

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope.get("path", "")
        parts = path.lstrip("/").split("/", 2)
        mounted = self._mounts.get(parts[0])
        if mounted is not None:
            rest = "/" + path.lstrip("/")[len(parts[0]) + 1 :]
            child = dict(scope, path=rest, root_path=scope.get("root_path", "") + "/" + parts[0])
            await mounted(child, receive, send)
            return
        if len(parts) < 2 or parts[0] != "s":
            await _plain(send, 404, b"not found")
            return
        await self._serve_file(scope, send, parts[1])

    async def _serve_file(self, scope: Scope, send: Send, token: str) -> None:
        method = scope.get("method", "GET")
        file = self._files.get(token)
        headers = header_map(scope)
        client = scope.get("client")
        record = _Recorder(
            token=token,
            client=f"{client[0]}:{client[1]}" if client else "?",
            method=method,
            range=headers.get("range"),
        )
        try:
            if file is None:
                record.status = await _plain(send, 404, b"not found")
                return
            if method not in ("GET", "HEAD"):
                record.status = await _plain(send, 405, b"method not allowed")
                return
            try:
                stat = await anyio.to_thread.run_sync(file.stat)
            except OSError:
                record.status = await _plain(send, 404, b"not found")
                return
            # the hook may hold the fetch (the upload seal); a refused or meanwhile unstaged one is not
            # served
            if method == "GET" and not await self._fetch_allowed(token, file):
                record.status = await _plain(send, 404, b"not found")
                return
            await self._send_file(send, file, stat, headers, record, head=method == "HEAD")
        finally:
            self._remember(record)

    async def _fetch_allowed(self, token: str, file: Path) -> bool:
        if self._on_fetch is None:
            return True
        return await self._on_fetch(token) and self._files.get(token) == file

    async def _send_file(
        self,
        send: Send,
        file: Path,
        stat: os.stat_result,
        headers: dict[str, str],
        record: _Recorder,
        *,
        head: bool,
    ) -> None:
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
        selection = select(
            stat.st_size,
            headers.get("range"),
            headers.get("if-range"),
            etag=etag,
            last_modified=modified,
        )
        record.status = selection.status
        ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        common = [("etag", etag), ("last-modified", modified), ("content-type", ctype)]
        try:
            await send_file(
                send,
                Source(path=file),
                selection,
                common,
                head=head,
                accept_ranges_on_206=self._accept_ranges_on_206,
                on_sent=record.count,
            )
        except OSError:  # the client went away mid-body (or the file went away under us)
            log.debug("staged file fetch ended early", extra={"sent": record.bytes_sent})

    def _remember(self, recorder: _Recorder) -> None:
        record = AccessRecord(
            token=recorder.token,
            at=time.time(),
            client=recorder.client,
            method=recorder.method,
            range=recorder.range,
            status=recorder.status,
            bytes_sent=recorder.bytes_sent,
        )
        if recorder.token in self._files or recorder.token in self._log:
            self._log.setdefault(recorder.token, []).append(record)
        log.debug(
            "staged file requested",
            extra={"status": record.status, "method": record.method, "bytes": record.bytes_sent},
        )
        if self._on_access is not None and record.status in (200, 206, 416):
            self._on_access(record)


def _resolve_file(path: Path) -> Path:
    """`path` resolved, if it is a file (runs in a thread)."""
    resolved = Path(path).resolve()
    if not resolved.is_file():
        raise FileNotFoundError(f"not a file: {path}")
    return resolved


@attrs.define
class _Recorder:
    token: str
    client: str
    method: str
    range: str | None
    status: int = 0
    bytes_sent: int = 0

    def count(self, sent: int) -> None:
        self.bytes_sent += sent


async def _plain(send: Send, status: int, body: bytes) -> int:
    await send_bytes(send, status, body, (("content-type", "text/plain"),))
    return status
