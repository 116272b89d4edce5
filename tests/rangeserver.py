"""A small HTTP/1.1 file server on real loopback sockets, for download tests and measurements.

It serves one byte string with ETag / Last-Modified / Accept-Ranges and honours `Range` and `If-Range`,
and it has a switch for every misbehaviour a resumable downloader must survive: drop the connection
after N body bytes, ignore Range (200), shift or lie in Content-Range, answer 416, add a Content-Encoding
to a 206, answer a status (503, 429 ...) first, redirect elsewhere, cap the bandwidth per connection, or
change the file between requests. Every request's headers are recorded.

Range and If-Range are read by the serving kit's one reading (`_servekit._files`). It is written on
raw anyio sockets rather than as an ASGI app because a downloader test needs exact
control of the bytes on the wire: a connection cut mid-body after exactly N bytes, headers no ASGI
server would let through, and no server-side buffering in between.

Usage (readiness is reported through `TaskGroup.start`, never by polling)::

    server = RangeServer(content=b"...")
    async with serving(server) as base_url:
        ...  # GET f"{base_url}/file"
    server.requests[1].headers["range"]
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

import anyio
import attrs
from anyio.abc import SocketAttribute, SocketStream, TaskStatus

from _servekit._files import if_range_matches, parse_range

__all__ = ["RangeServer", "RecordedRequest", "serving"]

_HEAD_LIMIT: Final = 64 * 1024
_SEND_CHUNK: Final = 1024 * 1024
_REASONS: Final = {
    200: "OK",
    206: "Partial Content",
    301: "Moved Permanently",
    302: "Found",
    307: "Temporary Redirect",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    416: "Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@attrs.frozen
class RecordedRequest:
    """One request as the server saw it; header names are lower-case.

    Attributes:
        method: the request method.
        target: the request target (path and query).
        headers: the request headers, names lower-cased.
    """

    method: str
    target: str
    headers: dict[str, str]


@attrs.define
class RangeServer:
    """The server's state and switches; change the switches between requests as a test needs.

    Attributes:
        content: the bytes of the file served at every path (except `redirect_path`).
        etag: the full ETag header value (`'"v1"'`, `'W/"v1"'`), or None for no ETag.
        last_modified: a Last-Modified HTTP date, or None.
        accept_ranges: send `Accept-Ranges: bytes` and honour Range; False answers 200 to everything.
        accept_ranges_on_206: False sends `Accept-Ranges` on 200s only, as nginx and most servers do.
        content_type: the Content-Type header value.
        content_disposition: a Content-Disposition header value, sent verbatim, or None.
        drops: body byte counts after which successive responses cut the connection (one used per
            response, front first); `None` entries mean "send the whole body".
        ignore_range: answer 200 with the whole file even to a satisfiable range request.
        range_start_shift: added to the start in the Content-Range header of a 206 (a lying server).
        claimed_total: the total put in Content-Range instead of the real size (a lying server).
        content_encoding_206: a Content-Encoding header value added to every 206.
        force_416: answer 416 (with `bytes */<size>`) to any range request.
        statuses: statuses answered (with `retry_after`, if set) before serving, front first.
        retry_after: the Retry-After value sent with `statuses`.
        status_body: the body sent with `statuses` (default: `status <code>`).
        redirect_path: requests to this path get a 302 to `redirect_to`.
        redirect_to: the Location for `redirect_path`.
        bytes_per_second: a per-connection bandwidth cap, or None.
        on_request: called with each request as it arrives, before the answer (to change the
            file at an exact point in a sequence of requests).
        ignore_if_range: honour Range even when If-Range does not match (a splicing cache).
        holds: (offset, event) pairs: a body stops after `offset` of its bytes until `event` is
            set (each pair used once, front first; offsets are within one response's body).
        requests: every request seen, in arrival order.
        bytes_sent: body bytes sent over all responses.
    """

    content: bytes
    etag: str | None = '"v1"'
    last_modified: str | None = None
    accept_ranges: bool = True
    accept_ranges_on_206: bool = True
    content_type: str = "application/octet-stream"
    content_disposition: str | None = None
    drops: list[int | None] = attrs.Factory(list)
    ignore_range: bool = False
    range_start_shift: int = 0
    claimed_total: int | None = None
    content_encoding_206: str | None = None
    force_416: bool = False
    statuses: list[int] = attrs.Factory(list)
    retry_after: str | None = None
    status_body: bytes | None = None
    redirect_path: str | None = None
    redirect_to: str | None = None
    bytes_per_second: int | None = None
    on_request: Callable[[RecordedRequest], object] | None = None
    ignore_if_range: bool = False
    holds: list[tuple[int, anyio.Event]] = attrs.Factory(list)
    requests: list[RecordedRequest] = attrs.Factory(list)
    bytes_sent: int = 0

    def replace_content(self, content: bytes, etag: str | None) -> None:
        """Change the file (and its validator), as a server whose file was rewritten."""
        self.content = content
        self.etag = etag
        self.last_modified = email.utils.formatdate(time.time(), usegmt=True)

    async def serve(self, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen on 127.0.0.1, port 0; report `http://127.0.0.1:<port>` through `task_status`."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        async with listener:
            port = listener.extra(SocketAttribute.local_port)  # noqa: S610 (anyio, not Django)
            task_status.started(f"http://127.0.0.1:{port}")
            await listener.serve(self._connection)

    async def _connection(self, stream: SocketStream) -> None:
        async with stream:
            buffer = b""
            try:
                while True:
                    head, buffer = await _read_head(stream, buffer)
                    if head is None:
                        return
                    keep_open = await self._respond(stream, head)
                    if not keep_open:
                        return
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return  # the client went away mid-response: normal for cancelled segments

    async def _respond(self, stream: SocketStream, head: bytes) -> bool:
        request = _parse_head(head)
        self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        close = request.headers.get("connection", "").lower() == "close"
        path = request.target.split("?", 1)[0]
        if self.statuses:
            status = self.statuses.pop(0)
            extra = [("Retry-After", self.retry_after)] if self.retry_after is not None else []
            await _send_simple(stream, status, extra, close=close, body=self.status_body)
            return not close
        if self.redirect_path is not None and path == self.redirect_path:
            await _send_simple(stream, 302, [("Location", self.redirect_to or "/")], close=close)
            return not close
        return await self._send_file(stream, request, close=close)

    async def _send_file(
        self, stream: SocketStream, request: RecordedRequest, *, close: bool
    ) -> bool:
        size = len(self.content)
        headers: list[tuple[str, str]] = [
            ("Content-Type", self.content_type),
            ("Date", email.utils.formatdate(time.time(), usegmt=True)),
        ]
        if self.etag is not None:
            headers.append(("ETag", self.etag))
        if self.last_modified is not None:
            headers.append(("Last-Modified", self.last_modified))
        if self.accept_ranges:
            headers.append(("Accept-Ranges", "bytes"))
        if self.content_disposition is not None:
            headers.append(("Content-Disposition", self.content_disposition))

        wanted = parse_range(request.headers.get("range"), size) if self.accept_ranges else None
        if (
            wanted is not None
            and not self.ignore_if_range
            and not self._if_range_holds(request.headers.get("if-range"))
        ):
            wanted = None
        if wanted is not None and self.ignore_range:
            wanted = None
        if wanted is not None and (self.force_416 or wanted == "unsatisfiable"):
            headers.append(("Content-Range", f"bytes */{size}"))
            await _send_simple(stream, 416, headers, close=close)
            return not close
        if isinstance(wanted, tuple):
            first, last = wanted
            total = self.claimed_total if self.claimed_total is not None else size
            headers.append(
                ("Content-Range", f"bytes {first + self.range_start_shift}-{last}/{total}")
            )
            if self.content_encoding_206 is not None:
                headers.append(("Content-Encoding", self.content_encoding_206))
            if not self.accept_ranges_on_206:  # as nginx: the header on 200s only
                headers = [h for h in headers if h[0] != "Accept-Ranges"]
            status, body = 206, memoryview(self.content)[first : last + 1]
        else:
            status, body = 200, memoryview(self.content)
        headers.append(("Content-Length", str(len(body))))
        if close:
            headers.append(("Connection", "close"))
        await stream.send(_status_head(status, headers))
        if request.method == "HEAD":
            return not close
        drop = self.drops.pop(0) if self.drops else None
        limit = len(body) if drop is None else min(drop, len(body))
        await self._send_body(stream, body[:limit])
        if limit < len(body):
            return False  # cut the connection mid-body
        return not close

    async def _send_body(self, stream: SocketStream, body: memoryview) -> None:
        chunk = _SEND_CHUNK
        if self.bytes_per_second is not None:
            chunk = max(1, min(chunk, self.bytes_per_second // 20))
        sent = 0
        while self.holds and self.holds[0][0] < len(body):
            offset, event = self.holds.pop(0)
            await stream.send(body[sent:offset])  # type: ignore[arg-type]
            self.bytes_sent += offset - sent
            sent = offset
            await event.wait()
        body = body[sent:]
        for start in range(0, len(body), chunk):
            piece = body[start : start + chunk]
            await stream.send(piece)  # type: ignore[arg-type]  # a memoryview is fine for a socket
            self.bytes_sent += len(piece)
            if self.bytes_per_second is not None:
                await anyio.sleep(len(piece) / self.bytes_per_second)

    def _if_range_holds(self, if_range: str | None) -> bool:
        return if_range is None or if_range_matches(
            if_range, etag=self.etag, last_modified=self.last_modified
        )


@contextlib.asynccontextmanager
async def serving(server: RangeServer) -> AsyncIterator[str]:
    """Run `server` in a task group for the duration of the block; yields its base URL."""
    async with anyio.create_task_group() as tg:
        url = await tg.start(server.serve)
        try:
            yield url
        finally:
            tg.cancel_scope.cancel()


async def _read_head(stream: SocketStream, buffer: bytes) -> tuple[bytes | None, bytes]:
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > _HEAD_LIMIT:
            return None, b""
        try:
            buffer += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return None, b""
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head, rest


def _parse_head(head: bytes) -> RecordedRequest:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = [*lines[0].split(" ", 2), "", ""][:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RecordedRequest(method=method, target=target, headers=headers)


def _status_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send_simple(
    stream: SocketStream,
    status: int,
    headers: list[tuple[str, str]],
    *,
    close: bool,
    body: bytes | None = None,
) -> None:
    body = f"status {status}\n".encode() if body is None else body
    headers = [*headers, ("Content-Length", str(len(body)))]
    if close:
        headers.append(("Connection", "close"))
    await stream.send(_status_head(status, headers) + body)
