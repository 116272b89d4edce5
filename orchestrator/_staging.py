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

import asyncio
import email.utils
import errno
import logging
import mimetypes
import os
import re
import secrets
import socket
import stat
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, Protocol, Self

import anyio
import anyio.abc
import anyio.to_thread
import attrs

__all__ = ["AccessRecord", "LocalFileServer", "PushStager", "StagedSource", "Stager", "is_url"]

log = logging.getLogger("orchestrator")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHUNK: Final = 256 * 1024
READ_TIMEOUT: Final = 10.0
"""Seconds a client has to send a whole request (headers and body) before its connection is closed."""
KEEP_ALIVE_TIMEOUT: Final = 5
"""Seconds an idle kept-alive connection stays open."""
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


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


class _QuietServer:
    """A uvicorn server that leaves signal handling to the application and bounds slow clients.

    uvicorn closes idle kept-alive connections (`timeout_keep_alive`) but has no limit on how long a
    client may take to send a request: a connection that sends nothing, or trickles its headers or
    body, is held for ever (900 such connections held the server's sockets in the issue-11 test). The
    protocol class below closes any connection whose current request is not fully received within
    `read_timeout` seconds of the connection opening (or of the previous response ending).
    """

    def __init__(self, app: ASGIApp, *, read_timeout: float = READ_TIMEOUT) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            def capture_signals(self) -> Any:
                return nullcontext()

        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
            http=_read_deadline_protocol(read_timeout),
            ws="none",
            interface="asgi3",
        )
        self.server = Server(config)


def _read_deadline_protocol(read_timeout: float) -> type[Any]:
    """uvicorn's h11 protocol, closing a connection whose request is not received within `read_timeout`."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    waiting = (h11.IDLE, h11.SEND_BODY)  # the client's side: no request yet, or its body unfinished

    class ReadDeadlineProtocol(H11Protocol):
        _read_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # the next request on this kept-alive connection

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self._read_deadline = self.loop.call_later(read_timeout, self._deadline_passed)

        def _disarm(self) -> None:
            if self._read_deadline is not None:
                self._read_deadline.cancel()
                self._read_deadline = None

        def _deadline_passed(self) -> None:
            self._read_deadline = None
            if self.conn.their_state in waiting and not self.transport.is_closing():
                log.debug("closing a connection that did not send its request in time")
                self.transport.close()

    return ReadDeadlineProtocol


class LocalFileServer(anyio.AsyncContextManagerMixin):
    """Serves staged local files (and any mounted ASGI app) over HTTP; an async context manager.

    `bind` is where it listens (port 0 picks a free one); `public_url` is where the service reaches it
    (default: the bound address). `on_access` is called with each `AccessRecord`. `on_fetch` (settable
    later with `set_fetch_hook`) is awaited with the token when a GET of a staged file arrives, before any
    byte is served: the place to make fetch evidence durable (the runner writes it to the journal).
    `read_timeout`: a client that has not sent a whole request (headers and body) this many seconds
    after connecting, or after its previous response, is disconnected; idle kept-alive connections
    close after `KEEP_ALIVE_TIMEOUT` seconds.
    """

    def __init__(
        self,
        *,
        bind: tuple[str, int] = ("127.0.0.1", 0),
        public_url: str | None = None,
        on_access: Callable[[AccessRecord], object] | None = None,
        on_fetch: Callable[[str], Awaitable[None]] | None = None,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        if not (isinstance(read_timeout, int | float) and 0 < read_timeout < float("inf")):
            raise ValueError(
                f"read_timeout must be a finite number of seconds > 0, got {read_timeout!r}"
            )
        self._read_timeout = float(read_timeout)
        self._bind = bind
        self._public_url = public_url.rstrip("/") if public_url else None
        self._on_access = on_access
        self._on_fetch = on_fetch
        self._files: dict[str, Path] = {}
        self._log: dict[str, list[AccessRecord]] = {}
        self._mounts: dict[str, Callable[..., Awaitable[None]]] = {}
        self._server: _QuietServer | None = None
        self._url: str | None = None

    def __repr__(self) -> str:
        return f"<LocalFileServer url={self._url!r} files={len(self._files)}>"

    @property
    def url(self) -> str:
        """The public base URL (available once the server runs)."""
        if self._url is None:
            raise RuntimeError("the file server is not running")
        return self._url

    def set_fetch_hook(self, hook: Callable[[str], Awaitable[None]] | None) -> None:
        """Await `hook(token)` whenever the service starts a GET of a staged file."""
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
        async with anyio.create_task_group() as tg:
            self._url = await tg.start(self._serve)
            try:
                yield self
            finally:
                if self._server is not None:
                    self._server.server.should_exit = True

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[str]) -> None:
        host, port = self._bind
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            sock.settimeout(0.0)
            bound_port = sock.getsockname()[1]
            self._server = quiet = _QuietServer(self._app, read_timeout=self._read_timeout)
            shown = f"[{host}]" if family == socket.AF_INET6 else host
            # the socket listens: connections queue until uvicorn accepts them, so we are ready now
            task_status.started(self._public_url or f"http://{shown}:{bound_port}")
            try:
                await quiet.server.serve(sockets=[sock])
            except anyio.get_cancelled_exc_class():
                with anyio.move_on_after(3, shield=True):
                    await quiet.server.shutdown(sockets=[sock])
                raise
        finally:
            sock.close()

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
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
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
            if method == "GET" and self._on_fetch is not None:
                await self._on_fetch(token)
            await self._send_file(send, file, stat, headers, record, head=method == "HEAD")
        finally:
            self._remember(record)

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
        size = stat.st_size
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        common = [
            (b"accept-ranges", b"bytes"),
            (b"etag", etag.encode()),
            (b"last-modified", email.utils.formatdate(stat.st_mtime, usegmt=True).encode()),
            (
                b"content-type",
                (mimetypes.guess_type(file.name)[0] or "application/octet-stream").encode(),
            ),
        ]
        start, end = 0, size - 1
        status = 200
        wanted = headers.get("range")
        if_range = headers.get("if-range")
        if wanted and (if_range is None or if_range.strip() == etag):
            parsed = _parse_range(wanted, size)
            if parsed is None:
                status = 416
            elif parsed != "whole":
                start, end = parsed
                status = 206
        if status == 416:
            record.status = 416
            await send(
                {
                    "type": "http.response.start",
                    "status": 416,
                    "headers": [
                        *common,
                        (b"content-range", f"bytes */{size}".encode()),
                        (b"content-length", b"0"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        length = max(end - start + 1, 0)
        out = [*common, (b"content-length", str(length).encode())]
        if status == 206:
            out.append((b"content-range", f"bytes {start}-{end}/{size}".encode()))
        record.status = status
        await send({"type": "http.response.start", "status": status, "headers": out})
        if head or length == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        # open, seek and the first read in one thread hop (a small file is served in that one hop)
        handle, chunk = await anyio.to_thread.run_sync(_open_at, file, start, min(CHUNK, length))
        try:
            remaining = length
            try:
                while remaining > 0:
                    if handle is not None and len(chunk) == 0:
                        chunk = await anyio.to_thread.run_sync(handle.read, min(CHUNK, remaining))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                    body, chunk = chunk, b""
                    await send(
                        {"type": "http.response.body", "body": body, "more_body": remaining > 0}
                    )
                    record.bytes_sent += len(body)
                if (
                    remaining > 0
                ):  # the file shrank under us: end it; the size check fails the fetch
                    await send({"type": "http.response.body", "body": b""})
            except OSError:  # the client went away mid-body
                log.debug(
                    "staged file fetch ended by the client", extra={"sent": record.bytes_sent}
                )
        finally:
            if handle is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(handle.close)

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


def _open_at(file: Path, start: int, size: int) -> tuple[BinaryIO | None, bytes]:
    """Up to `size` bytes of `file` from `start`, and the open file if more may follow (runs in a thread).

    A read shorter than asked (end of the range or of the file) closes the file: nothing follows.
    """
    handle = file.open("rb")
    try:
        handle.seek(start)
        chunk = handle.read(size)
    except BaseException:
        handle.close()
        raise
    if len(chunk) < size or size < CHUNK:
        handle.close()
        return None, chunk
    return handle, chunk


@attrs.define
class _Recorder:
    token: str
    client: str
    method: str
    range: str | None
    status: int = 0
    bytes_sent: int = 0


def _parse_range(header: str, size: int) -> tuple[int, int] | Literal["whole"] | None:
    """The single byte range `header` asks for, clipped to the file; None when unsatisfiable.

    A header we do not understand (several ranges, other units) gets the whole file ("whole"), as RFC 9110
    allows a server to ignore Range.
    """
    match = _RANGE.match(header)
    if match is None:
        return "whole"
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return "whole"
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return None
        return (max(size - n, 0), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return None
    return (start, min(end, size - 1))


async def _plain(send: Send, status: int, body: bytes) -> int:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
    return status
